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

use std::collections::{BTreeMap, HashMap};

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
    ("sessions.html", include_str!("templates/sessions.html")),
];

/// The names of the pages, as a templates folder names the files that replace them.
pub const TEMPLATE_NAMES: [&str; 6] = [
    "base.html",
    "chooser.html",
    "callback.html",
    "error.html",
    "signed_out.html",
    "sessions.html",
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
    /// Each app's own stylesheet (its colours), by app id.
    app_css: HashMap<String, String>,
}

impl Pages {
    /// The built-in pages.
    pub fn builtin() -> Result<Self, String> {
        Self::new(&BTreeMap::new(), &[])
    }

    /// The built-in pages with `replaced` (file name → template) in place of theirs, and the
    /// stylesheets of apps with colours of their own (`(app id, CSS)`).
    pub fn new(
        replaced: &BTreeMap<String, String>,
        app_styles: &[(String, String)],
    ) -> Result<Self, String> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            let source = replaced.get(*name).map_or(*source, String::as_str);
            env.add_template_owned(name.to_string(), source.to_owned())
                .map_err(|e| format!("{name}: {e}"))?;
        }
        let mut assets = Assets::builtin();
        let app_css = app_styles
            .iter()
            .map(|(id, css)| {
                let stem: String = id
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .take(40)
                    .collect();
                let path = assets.add(&format!("app-{stem}"), "css", css.clone().into_bytes());
                (id.clone(), path)
            })
            .collect();
        Ok(Self {
            env,
            assets,
            app_css,
        })
    }

    /// The stylesheet of app `app_id`, if it has colours of its own.
    pub fn app_css(&self, app_id: &str) -> Option<&str> {
        self.app_css.get(app_id).map(String::as_str)
    }

    /// Renders every page in every language with sample values: an operator's template that
    /// names a string or a value that does not exist fails here, at startup, not in front of a
    /// person.
    pub fn check(&self) -> Result<(), String> {
        for lang in Lang::ALL {
            let c = Chrome {
                lang,
                brand: Brand::NONE,
                app_css: None,
            };
            let p = [ProviderLink {
                label: "Example",
                href: "/authorize".into(),
                logo_url: None,
            }];
            self.try_render("chooser.html", &c, context! { providers => p })?;
            self.try_render("callback.html", &c, callback_values("body", "c", "s", "i"))?;
            for kind in ErrorKind::ALL {
                self.try_render("error.html", &c, error_values(kind, 400, "/"))?;
            }
            self.try_render("signed_out.html", &c, context! { sign_in_again => "/" })?;
            let rows = [serde_json::json!({
                "id": "h", "appId": "web", "providerId": "dev", "userAgent": "Firefox",
                "clientAddr": null, "created": "2026-01-01 10:00 UTC",
                "lastSeen": "2026-01-01 10:05 UTC", "current": false,
            })];
            self.try_render(
                "sessions.html",
                &c,
                context! { sessions => rows, others => true },
            )?;
        }
        Ok(())
    }

    fn try_render(&self, name: &str, chrome: &Chrome<'_>, page: Value) -> Result<String, String> {
        let ctx = context! {
            lang => chrome.lang.tag(),
            t => chrome.lang.strings(),
            brand => &chrome.brand,
            assets => context! {
                css => self.assets.css_path(),
                callback_js => self.assets.callback_js_path(),
                sessions_js => self.assets.sessions_js_path(),
                app_css => chrome.app_css,
            },
            ..page
        };
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| format!("{name}: {e}"))
    }

    /// Renders template `name` for `chrome` with `page`'s values; a failure is logged and
    /// answered with a bare page that shows nothing of the request.
    fn render(&self, name: &str, chrome: &Chrome<'_>, page: Value) -> String {
        self.try_render(name, chrome, page).unwrap_or_else(|e| {
            tracing::error!(error = %e, "page template failed");
            FALLBACK.to_owned()
        })
    }

    /// The provider chooser.
    pub fn chooser(&self, chrome: &Chrome<'_>, providers: &[ProviderLink<'_>]) -> String {
        self.render("chooser.html", chrome, context! { providers })
    }

    /// The callback page: `mode` is `body` (the script POSTs the code as JSON) or `query` (in
    /// the query string); without JavaScript its form posts `code` and `state` to
    /// `/web-login/finish`.
    pub fn callback(
        &self,
        chrome: &Chrome<'_>,
        mode: &str,
        code: &str,
        state: &str,
        iss: Option<&str>,
    ) -> String {
        let iss = iss.unwrap_or_default();
        self.render(
            "callback.html",
            chrome,
            callback_values(mode, code, state, iss),
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
            error_values(kind, status, start_again),
        )
    }

    /// The page after a logout; `sign_in_again` is a safe target.
    pub fn signed_out(&self, chrome: &Chrome<'_>, sign_in_again: &str) -> String {
        self.render("signed_out.html", chrome, context! { sign_in_again })
    }
}

impl Pages {
    /// The sessions page: `sessions` are `/me/sessions`' rows with `created` and `lastSeen` as
    /// readable times; `others` whether any session but the current one is live.
    pub fn sessions(&self, chrome: &Chrome<'_>, sessions: &[serde_json::Value]) -> String {
        let others = sessions.iter().any(|s| s["current"] != true);
        self.render("sessions.html", chrome, context! { sessions, others })
    }
}

/// The values of the callback page (see `docs/pages.md`).
fn callback_values(mode: &str, code: &str, state: &str, iss: &str) -> Value {
    context! { mode, code, state, iss, start_again => "/" }
}

/// The values of an error page (see `docs/pages.md`).
fn error_values(kind: ErrorKind, status: u16, start_again: &str) -> Value {
    context! { kind => kind.key(), status, start_again }
}

#[cfg(test)]
mod tests;
