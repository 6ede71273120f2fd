//! The key under which a verified session token is cached (and the renewals and introspection
//! caches keyed the same way): the token's SHA-256, 32 bytes whatever the token's length.

/// The token cache's key for `token`.
pub type TokenDigest = [u8; 32];

/// A session token with its cache key ([`token_digest`]), computed once for the cache probe and
/// the cold path after it. The key can only come from the token itself: a session verified
/// from one token is never cached under another's key.
#[derive(Clone, Copy)]
pub struct KeyedToken<'a> {
    text: &'a str,
    digest: TokenDigest,
}

impl<'a> KeyedToken<'a> {
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            digest: token_digest(text),
        }
    }

    /// The token itself.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Its cache key.
    pub fn digest(&self) -> &TokenDigest {
        &self.digest
    }
}

/// The SHA-256 of `token`: the key under which its verification is cached.
pub fn token_digest(token: &str) -> TokenDigest {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}
