//! The `idgate_login` cookie: what a browser carries between `/authorize` and the end of its
//! login. Dot-separated elements:
//!
//! - the **bindings** of the browser's newest logins, newest first (43 base64url characters
//!   each, at most [`MAX_BINDINGS`]): `/oauth/token` finishes a login only for the browser
//!   holding its binding (see [`super::Binding`]);
//! - at most one **back** element (`~` and base64url): the app and the page the newest login
//!   was started for ([`Back`]). It lets a login that failed after the IdP — its state stale,
//!   used already, or refused — show the app's brand and a "start again" link to that page,
//!   when the login state that knew them is gone. It decides nothing: it is read back as
//!   client input and checked again like `/authorize`'s own parameters (the app must exist and
//!   the page be one of its allowed redirects).
//!
//! Older readers skip the back element: it is never a well-formed binding.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::config::AppConfig;
use crate::cookie::Kind;
use crate::state::AppState;

/// How many logins in progress one browser can complete: its login cookie keeps the bindings of
/// the newest ones only, each bound to exactly one login state.
pub(crate) const MAX_BINDINGS: usize = 4;

/// Marks the back element (never a base64url character, so never a binding).
const BACK_MARK: char = '~';

/// Longest back element written or read: a redirect is at most 2048 bytes; with the app's id,
/// JSON and base64 this leaves room, and the cookie stays under browsers' 4 KB.
const MAX_BACK: usize = 3000;

/// How long the cookie outlives the start of the newest login, at least: longer than the login
/// state (two minutes by default), so a person who took their time at the IdP and came back
/// to a stale state is still offered the way back to their page.
const KEEP_SECS: i64 = 30 * 60;

/// Where the newest login of this browser was going: its app and the (checked) page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Back {
    pub app_id: String,
    /// A target `/authorize` accepted for the app (may be empty: the app had no default).
    pub redirect: String,
}

impl Back {
    /// The cookie element for this target, or `None` when it would be too long to carry.
    pub(crate) fn element(&self) -> Option<String> {
        let json = serde_json::to_vec(&[&self.app_id, &self.redirect]).ok()?;
        let element = format!("{BACK_MARK}{}", URL_SAFE_NO_PAD.encode(json));
        (element.len() <= MAX_BACK).then_some(element)
    }

    /// The back element of a login cookie, as written (re-checked by [`Back::checked`]).
    fn read(cookie: Option<&str>) -> Option<Self> {
        let element = cookie?
            .split('.')
            .find_map(|e| e.strip_prefix(BACK_MARK))
            .filter(|e| e.len() < MAX_BACK)?;
        let json = URL_SAFE_NO_PAD.decode(element).ok()?;
        let [app_id, redirect]: [String; 2] = serde_json::from_slice(&json).ok()?;
        Some(Self { app_id, redirect })
    }

    /// The app and the page a browser's login cookie names, if both still pass the checks
    /// `/authorize` made: a configured app, and a page it allows (or none).
    pub(crate) fn checked<'a>(
        state: &'a AppState,
        cookie: Option<&str>,
    ) -> Option<(&'a AppConfig, Option<String>)> {
        let back = Self::read(cookie)?;
        let app = state.app(&back.app_id)?.as_ref();
        let page = Some(back.redirect)
            .filter(|r| !r.is_empty())
            .and_then(|r| crate::redirect::validate(&r, &app.allowed_redirects).ok());
        Some((app, page))
    }
}

/// The raw back element of a login cookie, to carry on unchanged.
pub(crate) fn back_element(cookie: Option<&str>) -> Option<&str> {
    cookie?
        .split('.')
        .find(|e| e.starts_with(BACK_MARK) && e.len() <= MAX_BACK)
}

/// The `Set-Cookie` of the login cookie holding `bindings` (newest first) and `back`, or
/// clearing it when no binding is left (a finished login needs no way back).
pub(crate) fn login_cookie(state: &AppState, bindings: &[&str], back: Option<&str>) -> String {
    if bindings.is_empty() {
        return state.cookies.clear(Kind::Login);
    }
    let value = bindings
        .iter()
        .copied()
        .chain(back)
        .collect::<Vec<_>>()
        .join(".");
    let ttl = state.config.session.login_state_ttl.as_secs() as i64;
    state.cookies.set(Kind::Login, &value, ttl.max(KEEP_SECS))
}

/// The well-formed bindings (43 base64url characters each) of a login cookie, newest first.
pub(crate) fn bindings(cookie: Option<&str>) -> impl Iterator<Item = &str> {
    cookie
        .unwrap_or("")
        .split('.')
        .filter(|b| {
            b.len() == 43
                && b.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        })
        .take(MAX_BINDINGS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_bindings_are_read_and_at_most_four() {
        let good = |c: char| c.to_string().repeat(43);
        let cookie = [
            "short".to_owned(),
            good('a'),
            format!("{}!", "b".repeat(42)),
            "c".repeat(44),
            "d-_".repeat(14) + "e",
            good('f'),
            good('g'),
            good('h'),
            good('i'),
        ]
        .join(".");
        let read: Vec<&str> = bindings(Some(&cookie)).collect();
        assert_eq!(
            read,
            [good('a'), "d-_".repeat(14) + "e", good('f'), good('g')],
            "the well-formed ones, the first four"
        );
        assert_eq!(bindings(None).count(), 0);
    }

    #[test]
    fn the_back_element_round_trips_and_is_never_a_binding() {
        let back = Back {
            app_id: "web".into(),
            redirect: "/docs?x=1&y=é".into(),
        };
        let element = back.element().unwrap();
        let cookie = format!("{}.{element}", "a".repeat(43));
        assert_eq!(Back::read(Some(&cookie)), Some(back));
        assert_eq!(back_element(Some(&cookie)), Some(element.as_str()));
        assert_eq!(
            bindings(Some(&cookie)).count(),
            1,
            "the back element is skipped"
        );
        // A cookie-safe value: no separator, quote, comma, semicolon or space.
        assert!(element
            .chars()
            .all(|c| c == BACK_MARK || c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }

    #[test]
    fn a_hostile_back_element_reads_as_none() {
        for cookie in [
            "~".to_owned(),
            "~!!!".to_owned(),
            format!("~{}", URL_SAFE_NO_PAD.encode(b"[\"web\"]")),
            format!("~{}", URL_SAFE_NO_PAD.encode(b"{\"app\":1}")),
            format!("~{}", URL_SAFE_NO_PAD.encode(b"[\"web\",\"/\",\"x\"]")),
            format!("~{}", "A".repeat(MAX_BACK)),
        ] {
            assert_eq!(Back::read(Some(&cookie)), None, "{cookie:.40}");
        }
        let long = Back {
            app_id: "web".into(),
            redirect: format!("/{}", "x".repeat(2300)),
        };
        assert_eq!(long.element(), None, "too long to carry");
    }
}
