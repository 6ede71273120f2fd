//! The login site's pages through real Nginx (the shipped snippets), the dev IdP and the idgate
//! binary: browser navigations get pages in their language, API callers keep JSON, the
//! callback's form finishes a login without JavaScript, and assets are cached for good.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use common::inproc::InProc;
use common::*;

/// The HTML with the `/` that attribute escaping writes as `&#x2f;` put back.
fn unescaped(html: &str) -> String {
    html.replace("&#x2f;", "/")
}

/// The `value` of the hidden input `name` of a page.
fn input_value(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no input {name}: {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

async fn get_with(browser: &Browser, url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = browser.client.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn is_html(resp: &reqwest::Response) -> bool {
    resp.headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("text/html"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_javascript_the_callback_form_finishes_the_login_once() {
    let stack = Stack::start();
    let site = stack.site();
    let browser = Browser::new();
    let path = "/docs/nojs?x=1";
    let resp = browser.navigate(&format!("{site}{path}")).await;
    let authorize = format!("{site}{}", location(&resp));
    let idp_url = location(&browser.navigate(&authorize).await);
    let callback = browser
        .login_at_idp(&idp_url, "alice", &format!("{site}/web-login/"))
        .await;

    // The page: its script inline in <head>, before the stylesheet (so the exchange waits for
    // nothing), allowed by its hash in the page's CSP; and a form with the code.
    let page = browser.navigate(&callback).await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self' 'sha256-") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = unescaped(&page.text().await.unwrap());
    let script = html
        .split("<script>")
        .nth(1)
        .and_then(|s| s.split("</script>").next())
        .unwrap();
    assert!(script.contains("/oauth/token"));
    let hash = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script))
    };
    assert!(csp.contains(&format!("'sha256-{hash}'")), "{csp}");
    assert!(
        html.find("<script>").unwrap() < html.find("<link rel=\"stylesheet\"").unwrap(),
        "the script comes before the stylesheet"
    );
    let code = input_value(&html, "code");
    let state = input_value(&html, "state");
    assert_eq!(Some(&code), query_param(&callback, "code").as_ref());
    assert!(html.contains("action=\"/web-login/finish\""));

    // The form, as a browser without JavaScript posts it: 303 to the page wanted, cookies set.
    let finish = || {
        browser
            .client
            .post(format!("{site}/web-login/finish"))
            .header("accept", "text/html")
            .form(&[("code", code.as_str()), ("state", state.as_str())])
            .send()
    };
    let done = finish().await.unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(location(&done), path);
    assert!(set_cookies(&done).iter().any(|c| c.starts_with("sid=")));
    let resp = browser.navigate(&format!("{site}{path}")).await;
    assert_eq!(resp.status(), 200, "signed in");
    // Where this person is signed in, as a page; as JSON for an API caller.
    let resp = browser.navigate(&format!("{site}/me/sessions")).await;
    assert_eq!(resp.status(), 200);
    assert!(is_html(&resp));
    let html = unescaped(&resp.text().await.unwrap());
    assert!(html.contains("Where you are signed in"), "{html}");
    assert!(
        html.contains("this device") && html.contains(" UTC"),
        "{html}"
    );
    assert!(
        !html.contains("<script"),
        "the sessions page needs no script: {html}"
    );
    let resp = get_with(
        &browser,
        &format!("{site}/me/sessions"),
        &[("accept", "application/json")],
    )
    .await;
    let list: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(list[0]["current"], true);

    // The same form again (a reload, a back button): a page that says so and starts again.
    let again = finish().await.unwrap();
    assert_eq!(again.status(), 400);
    assert!(is_html(&again));
    let html = again.text().await.unwrap();
    assert!(html.contains("Sign-in could not be completed"), "{html}");
    assert!(html.contains("Start again"), "{html}");
    assert!(!html.contains(&code), "the code is not echoed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_get_pages_in_their_language_and_api_callers_json() {
    let stack = Stack::start();
    let site = stack.site();
    let browser = Browser::new();
    let html_accept = ("accept", "text/html,application/xhtml+xml,*/*;q=0.8");
    let evil = encode("https://evil.example/<script>alert(1)</script>");

    // A refused redirect at /authorize: a page in Italian, the input nowhere on it.
    let bad = format!("{site}/authorize?appId=web&providerId=dev&redirect={evil}");
    let resp = get_with(
        &browser,
        &bad,
        &[html_accept, ("accept-language", "it-IT,it;q=0.9")],
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert!(is_html(&resp));
    assert!(resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let html = resp.text().await.unwrap();
    assert!(html.contains("<html lang=\"it\">"), "{html}");
    assert!(html.contains("Questo link non è valido"), "{html}");
    assert!(html.contains("Ricomincia"), "{html}");
    for leak in ["evil.example", "<script>alert", "redirect", "is invalid"] {
        assert!(!html.contains(leak), "{leak} on the page: {html}");
    }
    // The same for an API caller: JSON naming the parameter.
    let resp = get_with(&browser, &bad, &[("accept", "application/json")]).await;
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("redirect"),
        "{body}"
    );
    // An XHR asking for HTML is still an API caller.
    let resp = get_with(
        &browser,
        &bad,
        &[html_accept, ("x-requested-with", "XMLHttpRequest")],
    )
    .await;
    assert!(!is_html(&resp));

    // An IdP's refusal at the callback: its words are not shown; a way back is.
    let refused = format!(
        "{site}/web-login/oauth/callback?error=access_denied&error_description={}&state=x",
        encode("<b>Injected</b> text")
    );
    let resp = get_with(&browser, &refused, &[html_accept]).await;
    assert_eq!(resp.status(), 400);
    let html = unescaped(&resp.text().await.unwrap());
    assert!(html.contains("Sign-in could not be completed"), "{html}");
    assert!(
        html.contains("href=\"/\""),
        "start again at the site: {html}"
    );
    assert!(
        !html.contains("Injected") && !html.contains("access_denied"),
        "{html}"
    );

    // A logout with nowhere to go: the signed-out page; an API caller keeps its JSON.
    let resp = get_with(&browser, &format!("{site}/logout"), &[html_accept]).await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("You are signed out"), "{html}");
    let resp = get_with(
        &browser,
        &format!("{site}/logout"),
        &[("accept", "application/json")],
    )
    .await;
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["loggedOut"], false);

    // The chooser: a page in the browser's language with its stylesheet, cached for good.
    let resp = get_with(
        &browser,
        &format!("{site}/web-login?appId=web&redirect=%2Fdocs"),
        &[html_accept, ("accept-language", "en-GB")],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let html = unescaped(&resp.text().await.unwrap());
    assert!(html.contains("<html lang=\"en\">"), "{html}");
    assert!(html.contains("Continue with"), "{html}");
    let css = html
        .split("<link rel=\"stylesheet\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let resp = browser.navigate(&format!("{site}{css}")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(
        resp.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let resp = browser
        .navigate(&format!("{site}/web-login/static/idgate.css"))
        .await;
    assert_eq!(resp.status(), 404, "only hashed names are served");
}

fn encode(s: &str) -> String {
    idgate::http::encode_query_value(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_s_brand_and_an_operator_s_template_reach_its_pages() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("signed_out.html"),
        "{% extends \"base.html\" %}{% block title %}{{ t.signed_out_title }}{% endblock %}\
         {% block main %}<h1 class=\"operator\">{{ t.signed_out_heading }}</h1>\
         <a href=\"{{ sign_in_again }}\">{{ t.sign_in_again }}</a>{% endblock %}",
    )
    .unwrap();
    let extra: &'static str =
        Box::leak(format!("[pages]\ntemplates = \"{}\"\n", dir.path().display()).into_boxed_str());
    let setup = Setup {
        extra,
        extra_app: "pages = { title = \"Negozio <Demo>\", accent_color = \"#0b5d1e\", \
                    footer = \"Demo S.p.A.\", language = \"it\", logo_url = \"/logo.svg\" }",
        extra_provider: "logo_url = \"/sso.svg\"",
        ..Setup::default()
    };
    let server = InProc::start(&setup, "http://127.0.0.1:1").await;
    let browser = Browser::new();

    // No Accept-Language: the app's language; its title, logo, footer and colours.
    let resp = browser.navigate(&server.url("/web-login?appId=web")).await;
    assert_eq!(resp.status(), 200);
    let html = unescaped(&resp.text().await.unwrap());
    assert!(html.contains("<html lang=\"it\">"), "{html}");
    assert!(html.contains("Accedi a Negozio &lt;Demo&gt;"), "{html}");
    assert!(
        html.contains("<img src=\"/logo.svg\" alt=\"Negozio &lt;Demo&gt;\">"),
        "{html}"
    );
    assert!(html.contains("<img src=\"/sso.svg\" alt=\"\">"), "{html}");
    assert!(html.contains("Demo S.p.A."), "{html}");
    let app_css = html
        .split("<link rel=\"stylesheet\" href=\"")
        .nth(2)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    assert!(
        app_css.starts_with("/web-login/static/app-web."),
        "{app_css}"
    );
    let css = browser.navigate(&server.url(&app_css)).await;
    assert_eq!(
        css.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let css = css.text().await.unwrap();
    assert!(css.contains("--idg-accent: #0b5d1e") && css.contains("--idg-accent-text: #ffffff"));
    // The browser's language wins over the app's.
    let resp = browser
        .client
        .get(server.url("/web-login?appId=web"))
        .header("accept", "text/html")
        .header("accept-language", "en-US,en;q=0.9")
        .send()
        .await
        .unwrap();
    assert!(resp.text().await.unwrap().contains("Sign in to Negozio"));

    // The operator's signed-out page replaces the built-in one.
    let resp = browser.navigate(&server.url("/logout")).await;
    assert_eq!(resp.status(), 200);
    let html = unescaped(&resp.text().await.unwrap());
    assert!(
        html.contains("<h1 class=\"operator\">Sei uscito</h1>"),
        "{html}"
    );
    assert!(html.contains("href=\"/web-login?appId=web\""), "{html}");
}

/// The sessions page's buttons are plain forms: `POST /me/sessions` ends a session without
/// JavaScript and sends the browser back to the list; a cross-site form is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sessions_page_ends_sessions_with_plain_forms() {
    let stack = Stack::start();
    let site = stack.site();
    let (me, other, third) = (Browser::new(), Browser::new(), Browser::new());
    for b in [&me, &other, &third] {
        assert_eq!(login(&stack, b, "/", "carol").await.status(), 200);
    }
    let list = |b: &Browser| {
        let url = format!("{site}/me/sessions");
        let b = b.client.clone();
        async move {
            let resp = b
                .get(url)
                .header("accept", "application/json")
                .send()
                .await
                .unwrap();
            resp.json::<serde_json::Value>().await.unwrap()
        }
    };
    let sessions = list(&me).await;
    assert_eq!(sessions.as_array().unwrap().len(), 3, "{sessions}");
    let others: Vec<String> = sessions
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["current"] == false)
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    let post = |fields: Vec<(&'static str, String)>, site_header: &'static str| {
        me.client
            .post(format!("{site}/me/sessions"))
            .header("accept", "text/html,application/xhtml+xml")
            .header("sec-fetch-site", site_header)
            .form(&fields)
            .send()
    };

    // Another site's form: refused with a page, nothing ended.
    let resp = post(vec![("end", others[0].clone())], "cross-site")
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(is_html(&resp));
    assert_eq!(list(&me).await.as_array().unwrap().len(), 3);
    // No `end`, or an id that is not one of this user's sessions: a page saying so.
    let resp = post(vec![], "same-origin").await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(is_html(&resp));
    let resp = post(vec![("end", "not-a-session".into())], "same-origin")
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    // The page's own form: one session ended, back to the list.
    let resp = post(vec![("end", others[0].clone())], "same-origin")
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/me/sessions");
    assert_eq!(list(&me).await.as_array().unwrap().len(), 2);
    // Then every other one: this browser alone is left signed in.
    let resp = post(vec![("end", "others".into())], "same-origin")
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let left = list(&me).await;
    assert_eq!(left.as_array().unwrap().len(), 1, "{left}");
    assert_eq!(left[0]["current"], true);
    for b in [&other, &third] {
        let resp = b.navigate(&format!("{site}/docs/")).await;
        assert_ne!(resp.status(), 200, "an ended session opens nothing");
    }
    // A program posting the same form gets JSON.
    let resp = me
        .client
        .post(format!("{site}/me/sessions"))
        .header("accept", "application/json")
        .header("sec-fetch-site", "same-origin")
        .form(&[("end", "others")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"ended": 0})
    );
}

/// A login cookie's back element, as a browser would carry one (see `routes::login::cookie`).
fn back_cookie(app: &str, redirect: &str) -> String {
    use base64::Engine;
    let json = serde_json::to_vec(&[app, redirect]).unwrap();
    format!(
        "idgate_login=~{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    )
}

/// A login that fails after the IdP — its state stale or unknown, the IdP refusing — shows the
/// app's brand and a "start again" link to the page the person wanted, known from the login
/// cookie `/authorize` set; a planted cookie naming another site or app changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_login_starts_again_at_the_page_wanted_with_the_app_s_brand() {
    let stack = Stack::start_with(Setup {
        extra_app: "pages = { title = \"Example Shop\" }",
        ..Setup::default()
    });
    let site = stack.site();
    let browser = Browser::new();
    let html_accept = ("accept", "text/html");
    let wanted = "/docs/deep?x=1&y=2";
    let resp = browser.navigate(&format!("{site}{wanted}")).await;
    let authorize = format!("{site}{}", location(&resp));
    // The person goes to the IdP, and comes back too late: the state is gone.
    assert_eq!(browser.navigate(&authorize).await.status(), 302);
    let stale = format!("{site}/web-login/oauth/callback?code=some-code&state=gone-state");
    let start_again = "href=\"/docs/deep?x=1&amp;y=2\"";

    // The callback page: the app's brand, and its way back for when the exchange fails.
    let resp = get_with(&browser, &stale, &[html_accept]).await;
    assert_eq!(resp.status(), 200);
    let html = unescaped(&resp.text().await.unwrap());
    assert!(html.contains("· Example Shop</title>"), "{html}");
    assert!(html.contains(start_again), "{html}");
    // Without JavaScript its form fails with a page that leads back to the same place.
    let resp = browser
        .client
        .post(format!("{site}/web-login/finish"))
        .header("accept", "text/html")
        .form(&[("code", "some-code"), ("state", "gone-state")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let html = unescaped(&resp.text().await.unwrap());
    assert!(html.contains("Sign-in could not be completed"), "{html}");
    assert!(html.contains(start_again), "{html}");
    assert!(html.contains("Example Shop"), "{html}");
    // The IdP refused: the same.
    let refused = format!("{site}/web-login/oauth/callback?error=access_denied&state=x");
    let resp = get_with(&browser, &refused, &[html_accept]).await;
    assert_eq!(resp.status(), 400);
    let html = unescaped(&resp.text().await.unwrap());
    assert!(html.contains(start_again), "{html}");

    // A cookie another site planted is client input: checked like /authorize's parameters.
    for (cookie, why) in [
        (
            back_cookie("web", "https://evil.example/"),
            "a page the app does not allow",
        ),
        (
            back_cookie("web", "//evil.example/x"),
            "a scheme-relative page",
        ),
        (back_cookie("nope", "/docs/x"), "an app that does not exist"),
        ("idgate_login=~%%%".to_owned(), "garbage"),
    ] {
        let resp = get_with(
            &Browser::new(),
            &refused,
            &[html_accept, ("cookie", &cookie)],
        )
        .await;
        assert_eq!(resp.status(), 400, "{why}");
        let html = unescaped(&resp.text().await.unwrap());
        assert!(!html.contains("evil.example"), "{why}: {html}");
        assert!(!html.contains("/docs/x"), "{why}: {html}");
        assert!(html.contains("Start again"), "{why}: {html}");
    }
    // An honest one, sent by another browser, works the same as the real one.
    let resp = get_with(
        &Browser::new(),
        &refused,
        &[html_accept, ("cookie", &back_cookie("web", "/docs/other"))],
    )
    .await;
    let html = unescaped(&resp.text().await.unwrap());
    assert!(html.contains("href=\"/docs/other\""), "{html}");
}
