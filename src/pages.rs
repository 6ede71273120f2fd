//! The few pages a login needs: the provider chooser (`/web-login`), the OAuth callback page
//! and its script, and a readable error page. Pages carry no inline script or style, so the
//! strict Content-Security-Policy of [`crate::headers::PAGE_CSP`] holds; every value put into
//! HTML is escaped.

use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};

/// One provider offered on the chooser page.
pub struct ProviderLink<'a> {
    pub label: &'a str,
    pub href: String,
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\"><title>{}</title></head>\
         <body><main>{body}</main></body></html>\n",
        text(title)
    )
}

pub fn provider_chooser(app_label: &str, links: &[ProviderLink<'_>]) -> String {
    let items: String = links
        .iter()
        .map(|l| {
            format!(
                "<li><a href=\"{}\">{}</a></li>",
                attr(&l.href),
                text(l.label)
            )
        })
        .collect();
    page(
        "Sign in",
        &format!("<h1>Sign in to {}</h1><ul>{items}</ul>", text(app_label)),
    )
}

/// `mode` is `body` (POST the code as JSON) or `query` (POST it in the query string).
pub fn callback(mode: &str) -> String {
    page(
        "Signing in…",
        &format!(
            "<p id=\"status\">Signing in…</p>\
             <script src=\"/web-login/callback.js\" data-mode=\"{}\"></script>",
            attr(mode)
        ),
    )
}

pub fn error(title: &str, message: &str) -> String {
    page(
        title,
        &format!("<h1>{}</h1><p>{}</p>", text(title), text(message)),
    )
}

/// Served as `/web-login/callback.js`: finishes the login started at `/authorize`.
pub const CALLBACK_JS: &str = r#"// idgate login callback: exchanges the IdP's code for a session, then goes back to the page
// the user first asked for. Served as a file so the page's strict CSP holds.
(function () {
  'use strict';
  var script = document.currentScript;
  var mode = script && script.getAttribute('data-mode') === 'query' ? 'query' : 'body';
  var status = document.getElementById('status');
  var params = new URLSearchParams(window.location.search);
  var code = params.get('code');
  var state = params.get('state');
  function fail(message) { status.textContent = 'Sign-in failed: ' + message; }
  if (params.get('error')) {
    fail(params.get('error_description') || params.get('error'));
    return;
  }
  if (!code || !state) { fail('the identity provider sent no code.'); return; }
  // The code must not linger in the address bar or the history.
  window.history.replaceState(null, '', window.location.pathname);
  var url = '/oauth/token';
  var init = { method: 'POST', credentials: 'same-origin', headers: { 'Accept': 'application/json' } };
  if (mode === 'query') {
    url += '?' + new URLSearchParams({ code: code, state: state }).toString();
  } else {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify({ code: code, state: state });
  }
  fetch(url, init).then(function (res) {
    if (res.ok) {
      window.location.replace(res.headers.get('Location') || '/');
      return;
    }
    return res.json().then(function (body) { fail(body.message || res.statusText); },
                           function () { fail(res.status + ' ' + res.statusText); });
  }, function (err) { fail(String(err)); });
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        let html = provider_chooser(
            "<b>app</b>",
            &[ProviderLink {
                label: "<i>x</i>",
                href: "/a?b=1&c=\"".into(),
            }],
        );
        assert!(!html.contains("<b>") && !html.contains("<i>"));
        assert!(html.contains("&amp;c=&quot;"));
        assert!(!callback("body").contains("<script>"), "no inline script");
    }
}
