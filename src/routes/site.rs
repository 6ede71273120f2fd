//! The login site's side of the routes: which language and brand a page gets, the error page a
//! browser navigation sees instead of JSON, the callback page, the no-JavaScript end of a login
//! (`POST /web-login/finish`) and the assets.

use http::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use http::{HeaderValue, StatusCode};

use crate::config::AppConfig;
use crate::cookie::Kind;
use crate::error::ApiError;
use crate::http::{html_response, query_params, Request, Response};
use crate::pages::{Brand, Callback, Chrome, ErrorKind, Lang};
use crate::routes::login::Back;
use crate::state::AppState;

/// What a page for one request needs, taken before the request is consumed.
pub(crate) struct PageContext {
    lang: Lang,
    /// The app the request names (`appId`), else the server's default app.
    app_id: Option<String>,
    /// Where "start again" goes: the page the person wanted when it is allowed, else the app's
    /// default target, else the site's root.
    start_again: String,
}

impl PageContext {
    pub(crate) fn of(state: &AppState, req: &Request) -> Self {
        let q = query_params(req.uri());
        let default_app = || {
            let id = state.config.server.default_app.as_deref()?;
            state.app(id).map(|a| a.as_ref())
        };
        // The app and page the request names; else those of the browser's newest login (its
        // login cookie: a failed callback knows nothing else); else the default app.
        let (app, wanted) = match q.get("appId").and_then(|id| state.app(id)) {
            Some(app) => {
                let page = q
                    .get("redirect")
                    .filter(|r| !r.is_empty())
                    .and_then(|r| crate::redirect::validate(r, &app.allowed_redirects).ok());
                (Some(app.as_ref()), page)
            }
            None => match Back::checked(state, state.cookies.read(req.headers(), Kind::Login)) {
                Some((app, page)) => (Some(app), page),
                None => (default_app(), None),
            },
        };
        let start_again = wanted
            .or_else(|| app.and_then(|a| a.default_redirect.clone()))
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "/".to_owned());
        Self {
            lang: Lang::choose(
                req.headers(),
                app.map_or(Lang::default(), |a| a.pages.language),
            ),
            app_id: app.map(|a| a.id.clone()),
            start_again,
        }
    }

    /// The language and brand of this request's pages.
    fn chrome<'a>(&self, state: &'a AppState) -> Chrome<'a> {
        let app = self.app_id.as_deref().and_then(|id| state.app(id));
        chrome_in(state, self.lang, app.map(|a| a.as_ref()))
    }

    /// `err` as a page, with the same status.
    pub(crate) fn error_page(&self, state: &AppState, err: ApiError) -> Response {
        let kind = err.page_kind();
        self.page_of(state, kind, err)
    }

    fn page_of(&self, state: &AppState, kind: ErrorKind, err: ApiError) -> Response {
        let status = err.logged_status();
        let html = state.pages.error(
            &self.chrome(state),
            kind,
            status.as_u16(),
            &self.start_again,
        );
        html_response(status, html)
    }
}

/// The language and brand of a page of `app` (or of no app) for a request with `headers`: the
/// browser's language when idgate speaks it, else the app's.
pub(crate) fn chrome<'a>(
    state: &'a AppState,
    headers: &http::HeaderMap,
    app: Option<&'a AppConfig>,
) -> Chrome<'a> {
    chrome_in(
        state,
        Lang::choose(headers, app.map_or(Lang::default(), |a| a.pages.language)),
        app,
    )
}

fn chrome_in<'a>(state: &'a AppState, lang: Lang, app: Option<&'a AppConfig>) -> Chrome<'a> {
    Chrome {
        lang,
        brand: app.map_or(Brand::NONE, |a| Brand {
            title: a.pages.title.as_deref().unwrap_or(&a.id),
            logo_url: a.pages.logo_url.as_deref(),
            footer: a.pages.footer.as_deref(),
        }),
        app_css: app.and_then(|a| state.pages.app_css(&a.id)),
    }
}

/// `GET /web-login/oauth/callback`, `/web-login/callback`: the page that finishes the login;
/// an IdP's refusal (`error`) or a callback without a code is an error page at once (the IdP's
/// own words are not shown: they are input).
pub fn callback_page(state: &AppState, req: &Request, mode: &str) -> Response {
    let q = query_params(req.uri());
    let ctx = PageContext::of(state, req);
    let code = q.get("code").filter(|c| !c.is_empty());
    let login_state = q.get("state").filter(|s| !s.is_empty());
    match (code, login_state) {
        (Some(code), Some(login_state)) if !q.contains_key("error") => {
            let page = Callback {
                mode,
                code,
                state: login_state,
                iss: q.get("iss").map(String::as_str),
                start_again: &ctx.start_again,
            };
            let mut resp = html_response(
                StatusCode::OK,
                state.pages.callback(&ctx.chrome(state), &page),
            );
            if let Ok(csp) = HeaderValue::from_str(state.pages.callback_csp()) {
                resp.headers_mut().insert(CONTENT_SECURITY_POLICY, csp);
            }
            resp
        }
        _ => html_response(
            StatusCode::BAD_REQUEST,
            state.pages.error(
                &ctx.chrome(state),
                ErrorKind::LoginFailed,
                StatusCode::BAD_REQUEST.as_u16(),
                &ctx.start_again,
            ),
        ),
    }
}

/// `POST /web-login/finish` (form `code`, `state`, and `iss` when the IdP sent one): the callback page's form, for a browser
/// without JavaScript. The same exchange as `/oauth/token`; its cookies are kept and the browser
/// is sent on with a 303 to the login's target, or shown an error page.
pub async fn finish(state: &AppState, peer: &super::Peer, req: Request) -> Response {
    let ctx = PageContext::of(state, &req);
    match super::token::exchange(state, peer, req).await {
        Ok(done) => {
            let target = done
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .unwrap_or("/")
                .to_owned();
            let mut resp = match crate::http::redirect(&target) {
                Ok(r) => r,
                Err(e) => return ctx.error_page(state, e.into()),
            };
            *resp.status_mut() = StatusCode::SEE_OTHER;
            for cookie in done.headers().get_all(SET_COOKIE) {
                resp.headers_mut().append(SET_COOKIE, cookie.clone());
            }
            resp
        }
        Err(e) if e.status().is_client_error() => ctx.page_of(state, ErrorKind::LoginFailed, e),
        Err(e) => ctx.error_page(state, e),
    }
}

/// `GET /web-login/static/{name}`: an asset, or 404.
pub fn asset(state: &AppState, path: &str) -> Result<Response, ApiError> {
    state
        .pages
        .assets
        .response(path)
        .ok_or_else(|| ApiError::NotFound("no such asset".into()))
}

/// The page after a logout of `app` (or none): "sign in again" goes to its chooser.
pub(crate) fn signed_out(
    state: &AppState,
    headers: &http::HeaderMap,
    app: Option<&AppConfig>,
) -> Response {
    let again = app.map_or_else(
        || "/".to_owned(),
        |a| {
            format!(
                "/web-login?appId={}",
                crate::http::encode_query_value(&a.id)
            )
        },
    );
    html_response(
        StatusCode::OK,
        state.pages.signed_out(&chrome(state, headers, app), &again),
    )
}

/// `GET /me/sessions` for a browser: the list as a page, its times readable (UTC).
pub(crate) fn sessions_page(
    state: &AppState,
    headers: &http::HeaderMap,
    mut rows: Vec<serde_json::Value>,
) -> Response {
    for row in &mut rows {
        for (from, to) in [("createdAt", "created"), ("lastSeenAt", "lastSeen")] {
            let at = row[from].as_i64().unwrap_or(0).max(0) as u64;
            row[to] = serde_json::Value::String(readable_time(at));
        }
    }
    let app = state
        .config
        .server
        .default_app
        .as_deref()
        .and_then(|id| state.app(id))
        .map(|a| a.as_ref());
    html_response(
        StatusCode::OK,
        state.pages.sessions(&chrome(state, headers, app), &rows),
    )
}

/// `2026-12-01 05:16 UTC`.
fn readable_time(secs: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    let s = humantime::format_rfc3339_seconds(t).to_string();
    format!("{} UTC", s.get(..16).unwrap_or(&s).replace('T', " "))
}
