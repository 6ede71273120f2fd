//! The pages a person's browser lands on: the provider chooser (`/web-login`), the callback
//! page ("signing you in", with a form that finishes the login without JavaScript), the error
//! pages and the signed-out page.
//!
//! Pages are [minijinja] templates (`templates/*.html`, compiled into the binary) with every
//! string from the [`catalogue`] of the page's language; values are HTML-escaped by default.
//! minijinja rather than askama: an operator's templates folder replaces pages at run time,
//! which askama's compile-time templates cannot do. Pages carry no inline script or style — the
//! stylesheet and the callback script are [`assets`] with hashed names — so the strict
//! Content-Security-Policy of [`crate::headers::PAGE_CSP`] holds.

pub mod assets;
pub mod catalogue;

use minijinja::{context, Environment, UndefinedBehavior, Value};
use serde::Serialize;

pub use assets::Assets;
pub use catalogue::Lang;

/// The built-in templates, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("chooser.html", include_str!("templates/chooser.html")),
    ("callback.html", include_str!("templates/callback.html")),
    ("error.html", include_str!("templates/error.html")),
    ("signed_out.html", include_str!("templates/signed_out.html")),
];

/// Shown when a page cannot be rendered (an operator's template failed): no detail, no input.
const FALLBACK: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
     <title>Error</title></head><body><main><h1>Error</h1><p><a href=\"/\">/</a></p></main>\
     </body></html>\n";

/// One provider offered on the chooser page.
#[derive(Debug, Serialize)]
pub struct ProviderLink<'a> {
    pub label: &'a str,
    pub href: String,
    /// A small logo shown beside the label, if the provider has one.
    pub logo_url: Option<&'a str>,
}

/// What a page shows of the app it belongs to.
#[derive(Debug, Clone, Serialize)]
pub struct Brand<'a> {
    /// The app's name as people know it.
    pub title: &'a str,
    /// Shown instead of the title in the page's header.
    pub logo_url: Option<&'a str>,
    /// A line at the bottom of every page.
    pub footer: Option<&'a str>,
}

impl Brand<'static> {
    /// The brand of a page that belongs to no app.
    pub const NONE: Brand<'static> = Brand {
        title: "idgate",
        logo_url: None,
        footer: None,
    };
}

/// What went wrong, as an error page tells a person: each kind has a title, an explanation
/// and what to do in the catalogue (`error_<kind>`, `…_text`, `…_todo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    LoginFailed,
    NotSignedIn,
    Forbidden,
    AccountInactive,
    NotFound,
    IdpUnavailable,
    Unavailable,
    Internal,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 9] = [
        Self::BadRequest,
        Self::LoginFailed,
        Self::NotSignedIn,
        Self::Forbidden,
        Self::AccountInactive,
        Self::NotFound,
        Self::IdpUnavailable,
        Self::Unavailable,
        Self::Internal,
    ];

    fn key(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::LoginFailed => "login_failed",
            Self::NotSignedIn => "not_signed_in",
            Self::Forbidden => "forbidden",
            Self::AccountInactive => "account_inactive",
            Self::NotFound => "not_found",
            Self::IdpUnavailable => "idp_unavailable",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

/// The page of one request: its language and its app's brand.
#[derive(Debug, Clone)]
pub struct Chrome<'a> {
    pub lang: Lang,
    pub brand: Brand<'a>,
    /// The app's own stylesheet (its colours), if it has one.
    pub app_css: Option<&'a str>,
}

/// The templates and assets every page is rendered with.
pub struct Pages {
    env: Environment<'static>,
    pub assets: Assets,
}

impl Pages {
    /// The built-in pages.
    pub fn builtin() -> Result<Self, minijinja::Error> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            env.add_template_owned(*name, *source)?;
        }
        Ok(Self {
            env,
            assets: Assets::builtin(),
        })
    }

    /// Renders template `name` for `chrome` with `page`'s values; a failure is logged and
    /// answered with a bare page that shows nothing of the request.
    fn render(&self, name: &str, chrome: &Chrome<'_>, page: Value) -> String {
        let ctx = context! {
            lang => chrome.lang.tag(),
            t => chrome.lang.strings(),
            brand => &chrome.brand,
            assets => context! {
                css => self.assets.css_path(),
                callback_js => self.assets.callback_js_path(),
                app_css => chrome.app_css,
            },
            ..page
        };
        match self.env.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => html,
            Err(e) => {
                tracing::error!(template = name, error = %e, "page template failed");
                FALLBACK.to_owned()
            }
        }
    }

    /// The provider chooser.
    pub fn chooser(&self, chrome: &Chrome<'_>, providers: &[ProviderLink<'_>]) -> String {
        self.render("chooser.html", chrome, context! { providers })
    }

    /// The callback page: `mode` is `body` (the script POSTs the code as JSON) or `query` (in
    /// the query string); without JavaScript its form posts `code` and `state` to
    /// `/web-login/finish`.
    pub fn callback(&self, chrome: &Chrome<'_>, mode: &str, code: &str, state: &str) -> String {
        self.render(
            "callback.html",
            chrome,
            context! { mode, code, state, start_again => "/" },
        )
    }

    /// An error page of `kind` with HTTP `status`; `start_again` is a safe, same-site target.
    pub fn error(
        &self,
        chrome: &Chrome<'_>,
        kind: ErrorKind,
        status: u16,
        start_again: &str,
    ) -> String {
        self.render(
            "error.html",
            chrome,
            context! { kind => kind.key(), status, start_again },
        )
    }

    /// The page after a logout; `sign_in_again` is a safe target.
    pub fn signed_out(&self, chrome: &Chrome<'_>, sign_in_again: &str) -> String {
        self.render("signed_out.html", chrome, context! { sign_in_again })
    }
}

#[cfg(test)]
mod tests;
