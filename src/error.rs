//! Errors that reach a client, and the one place they become HTTP responses.
//!
//! Every endpoint but `/auth` answers errors as JSON `{"statusCode","error","message"}` whose
//! message tells an operator what to fix. `/auth` has its own, explicit mapping (see
//! `routes::auth`): Nginx's `auth_request` understands only 2xx, 401 and 403.
//! No message ever carries a token, a code or a secret.

use http::StatusCode;

use crate::http::{json_response, Response, WireError};
use crate::idp::IdpError;
use crate::redirect::RedirectError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("query parameter `{0}` is required")]
    MissingParam(&'static str),
    #[error("`{name}` is invalid: {reason}")]
    InvalidParam { name: &'static str, reason: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("identity provider error: {0}")]
    Idp(String),
    /// The IdP did not answer within the provider's `timeout`.
    #[error("identity provider error: {0}")]
    IdpTimeout(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A login rate limit (`limits`): which bucket, and the seconds until a retry passes.
    #[error("too many login attempts {0}; try again in {1} s")]
    TooManyRequests(&'static str, u64),
    #[error("internal error: {0}")]
    Internal(String),
}

/// An IdP failure as the client sees it, the same at every endpoint: an id_token idgate refuses
/// is the login's failure (401), an OAuth error from the IdP (a used or expired code) the
/// request's (400), a timeout is told apart (504), anything else is the IdP's failure (502);
/// the details of the last two stay in the log.
impl From<IdpError> for ApiError {
    fn from(e: IdpError) -> Self {
        match e {
            IdpError::IdToken(_) => Self::Unauthorized(e.to_string()),
            IdpError::Rejected(_) | IdpError::StepUpUnsupported(_) => {
                Self::BadRequest(e.to_string())
            }
            IdpError::Timeout(_) => Self::IdpTimeout(e.to_string()),
            IdpError::Discovery { .. } | IdpError::Protocol(_) => Self::Idp(e.to_string()),
        }
    }
}

/// A refused redirect target: the `redirect` parameter, and why.
impl From<RedirectError> for ApiError {
    fn from(e: RedirectError) -> Self {
        Self::InvalidParam {
            name: "redirect",
            reason: e.to_string(),
        }
    }
}

impl From<WireError> for ApiError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::PayloadTooLarge(n) => Self::PayloadTooLarge(n),
            WireError::RequestTimeout => Self::RequestTimeout,
            WireError::BadBody(m) => Self::BadRequest(m),
            WireError::UnsupportedMediaType(m) => Self::UnsupportedMediaType(m),
            WireError::BadLocation => Self::Internal(e.to_string()),
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingParam(_) | Self::InvalidParam { .. } | Self::BadRequest(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Idp(_) => StatusCode::BAD_GATEWAY,
            Self::IdpTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Store(StoreError::Refused { .. }) => StatusCode::FORBIDDEN,
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooManyRequests(..) => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client is told. A fault of the request is described; a failure on idgate's
    /// side only named (which store, the IdP), since its details — addresses, internal ids,
    /// driver messages — are for the log, not for whoever sent the request.
    fn public_message(&self) -> String {
        match self {
            Self::Idp(_) => "the identity provider could not complete the login; try again \
                             later"
                .into(),
            Self::IdpTimeout(_) => {
                "the identity provider did not answer in time; try again later".into()
            }
            Self::Store(StoreError::Refused { .. }) => {
                "this account is not active in the users store; ask an administrator".into()
            }
            Self::Store(StoreError::Corrupt { store, .. }) => {
                format!("the {store} holds a record idgate cannot read")
            }
            Self::Store(StoreError::Unavailable { store, .. }) => {
                format!("the {store} is unavailable; try again later")
            }
            Self::Internal(_) => "internal error".into(),
            other => other.to_string(),
        }
    }

    /// Logs a failure on idgate's side, once, whole; returns the status and the public message.
    fn logged(&self) -> (StatusCode, String) {
        let status = self.status();
        if status.is_server_error() || matches!(self, Self::Store(_)) {
            tracing::error!(error = %self, "request failed");
        }
        (status, self.public_message())
    }

    /// What an error page tells a person about this error: a kind with its own words in the
    /// catalogue, never the message (which may quote the request).
    pub fn page_kind(&self) -> crate::pages::ErrorKind {
        use crate::pages::ErrorKind as K;
        match self {
            Self::MissingParam(_)
            | Self::InvalidParam { .. }
            | Self::BadRequest(_)
            | Self::PayloadTooLarge(_)
            | Self::RequestTimeout
            | Self::UnsupportedMediaType(_) => K::BadRequest,
            Self::Unauthorized(_) => K::NotSignedIn,
            Self::Forbidden(_) => K::Forbidden,
            Self::Store(StoreError::Refused { .. }) => K::AccountInactive,
            Self::NotFound(_) | Self::MethodNotAllowed => K::NotFound,
            Self::Idp(_) | Self::IdpTimeout(_) => K::IdpUnavailable,
            Self::Store(_) => K::Unavailable,
            Self::TooManyRequests(..) => K::TooMany,
            Self::Internal(_) => K::Internal,
        }
    }

    /// Logs a failure on idgate's side, once, whole (as [`ApiError::into_response`] does), for
    /// an error answered as a page; returns the status.
    pub fn logged_status(&self) -> StatusCode {
        self.logged().0
    }

    /// The JSON error response; failures on idgate's side are also logged here, once, whole.
    pub fn into_response(self) -> Response {
        let (status, message) = self.logged();
        let mut resp = json_response(status, &error_body(status, &message));
        if matches!(self, Self::RequestTimeout | Self::PayloadTooLarge(_)) {
            // The rest of the body is still on the way: do not wait for it to reuse the
            // connection.
            resp.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        resp
    }
}

/// `{"statusCode":N,"error":"<reason phrase>","message":"…"}`.
pub fn error_body(status: StatusCode, message: &str) -> serde_json::Value {
    serde_json::json!({
        "statusCode": status.as_u16(),
        "error": status.canonical_reason().unwrap_or("Error"),
        "message": message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_bodies() {
        let cases = [
            (ApiError::MissingParam("appId"), 400, "appId"),
            (
                ApiError::Unauthorized("no session".into()),
                401,
                "no session",
            ),
            (ApiError::Forbidden("peer".into()), 403, "peer"),
            (
                ApiError::Idp("token endpoint said 400".into()),
                502,
                "identity provider",
            ),
            (
                ApiError::Store(StoreError::Unavailable {
                    store: "embedded store",
                    message: "locked".into(),
                }),
                503,
                "embedded store",
            ),
            (ApiError::PayloadTooLarge(10), 413, "10"),
            (ApiError::RequestTimeout, 408, "in time"),
            (
                ApiError::Store(StoreError::Refused {
                    store: "mongodb",
                    message: "user 64a1 is in state TRASH".into(),
                }),
                403,
                "not active",
            ),
        ];
        for (err, code, needle) in cases {
            assert_eq!(err.status().as_u16(), code);
            let msg = err.public_message();
            assert!(msg.contains(needle), "{msg}");
            let body = error_body(err.status(), &msg);
            assert_eq!(body["statusCode"], code);
            assert!(body["error"].is_string());
        }
    }

    #[test]
    fn server_side_details_stay_out_of_the_body() {
        let secrets = [
            ApiError::Idp("token endpoint http://10.1.2.3:8443/token said 500".into()),
            ApiError::Store(StoreError::Unavailable {
                store: "redis",
                message: "connection refused (10.1.2.3:6379)".into(),
            }),
            ApiError::Store(StoreError::Corrupt {
                store: "mongodb",
                message: "document 64a1 field groups".into(),
            }),
            ApiError::Store(StoreError::Refused {
                store: "mongodb",
                message: "user 64a1 (subject alice) is in state TRASH".into(),
            }),
            ApiError::Internal("key id k1 missing".into()),
        ];
        for err in secrets {
            let body = err.public_message();
            for leak in ["10.1.2.3", "64a1", "alice", "k1", "http://"] {
                assert!(!body.contains(leak), "{body}");
            }
        }
    }

    #[test]
    fn an_idp_timeout_is_told_apart_and_pages_name_each_kind() {
        let timeout = ApiError::from(IdpError::Timeout(
            "http://10.1.2.3/token: operation timed out".into(),
        ));
        assert_eq!(timeout.status(), StatusCode::GATEWAY_TIMEOUT);
        let other = ApiError::from(IdpError::Protocol("said 500".into()));
        assert_eq!(other.status(), StatusCode::BAD_GATEWAY);
        let refused = ApiError::from(IdpError::Rejected("invalid_grant".into()));
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        let forged = ApiError::from(IdpError::IdToken("nonce mismatch".into()));
        assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

        assert_eq!(timeout.page_kind(), crate::pages::ErrorKind::IdpUnavailable);
        assert_eq!(timeout.logged_status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(
            ApiError::Store(StoreError::Refused {
                store: "mongodb",
                message: "x".into()
            })
            .page_kind(),
            crate::pages::ErrorKind::AccountInactive
        );
        assert_eq!(
            ApiError::InvalidParam {
                name: "redirect",
                reason: "https://evil.example/ is not allowed".into(),
            }
            .page_kind(),
            crate::pages::ErrorKind::BadRequest
        );
    }
}
