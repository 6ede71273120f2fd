//! The built-in pages: every one renders in every language, escapes what it is given, and
//! holds no text of its own, no inline style, and no inline script but the callback's (allowed
//! by its hash).

use super::*;

fn chrome(lang: Lang) -> Chrome<'static> {
    Chrome {
        lang,
        brand: Brand {
            title: "<b>Shop</b>",
            logo_url: None,
            footer: Some("© <i>Shop</i>"),
        },
        app_css: None,
    }
}

/// Every built-in page, rendered in `lang`.
fn every_page(pages: &Pages, lang: Lang) -> Vec<String> {
    let c = chrome(lang);
    let links = [ProviderLink {
        label: "<i>x</i>",
        href: "/authorize?a=1&b=\"".into(),
        logo_url: Some("/logo.svg"),
    }];
    let mut out = vec![
        pages.chooser(&c, &links),
        pages.chooser(&c, &[]),
        pages.callback(
            &c,
            &Callback {
                mode: "body",
                code: "co<de",
                state: "st\"ate",
                iss: Some("https://idp.test/<x>"),
                start_again: "/",
            },
        ),
        pages.signed_out(&c, "/web-login?appId=a"),
        pages.sessions(
            &c,
            &[serde_json::json!({
                "id": "h1", "appId": "<i>", "providerId": "dev", "userAgent": "<b>UA</b>",
                "clientAddr": "10.0.0.1", "created": "x", "lastSeen": "y", "current": false,
            })],
        ),
    ];
    for kind in ErrorKind::ALL {
        out.push(pages.error(&c, kind, 400, "/"));
    }
    out
}

#[test]
fn every_page_renders_in_every_language_and_escapes_its_values() {
    let pages = Pages::builtin().unwrap();
    for lang in Lang::ALL {
        for html in every_page(&pages, lang) {
            assert_ne!(html, FALLBACK, "a template failed");
            assert!(html.contains(&format!("<html lang=\"{}\">", lang.tag())));
            for raw in ["<b>", "<i>", "co<de", "st\"ate", "&b=\"", "<iss>"] {
                assert!(!html.contains(raw), "{raw} unescaped: {html}");
            }
            // The one inline script is the callback's own, which the page's CSP allows by
            // its hash (see assets::callback_csp); no other page has any.
            let inline = format!("<script>{}</script>", pages.assets.callback_inline());
            assert!(
                !html.replace(&inline, "").contains("<script>"),
                "no other inline script"
            );
            assert!(
                !html.contains("<style") && !html.contains(" style="),
                "no inline style"
            );
            assert!(html.contains(&pages.assets.css_path().replace('/', "&#x2f;")));
        }
    }
    let it = every_page(&pages, Lang::It).join("");
    assert!(it.contains("Accedi a &lt;b&gt;Shop&lt;&#x2f;b&gt;"), "{it}");
}

#[test]
fn templates_hold_no_text_of_their_own() {
    for (name, source) in TEMPLATES {
        // What is left once tags, template code and entities are gone must be blank.
        let mut rest = String::new();
        let mut depth = 0usize;
        let bytes: Vec<char> = source.chars().collect();
        let mut i = 0;
        while i < bytes.len() {
            let two: String = bytes[i..(i + 2).min(bytes.len())].iter().collect();
            match (two.as_str(), bytes[i]) {
                ("{{" | "{%" | "{#", _) => {
                    depth += 1;
                    i += 2;
                    continue;
                }
                ("}}" | "%}" | "#}", _) if depth > 0 => {
                    depth -= 1;
                    i += 2;
                    continue;
                }
                (_, '<') if depth == 0 => depth += 1,
                (_, '>') if depth > 0 => depth -= 1,
                (_, c) if depth == 0 => rest.push(c),
                _ => {}
            }
            i += 1;
        }
        let letters: String = rest
            .split_whitespace()
            .filter(|w| !matches!(*w, "·" | ":"))
            .collect();
        assert!(letters.is_empty(), "{name} holds text: {letters:?}");
    }
}

#[test]
fn a_missing_string_fails_the_render_instead_of_showing_nothing() {
    let mut pages = Pages::builtin().unwrap();
    pages
        .env
        .add_template_owned("chooser.html", "{{ t.no_such_key }}")
        .unwrap();
    assert_eq!(pages.chooser(&chrome(Lang::En), &[]), FALLBACK);
}

#[test]
fn a_template_of_the_operator_replaces_its_page_and_a_broken_one_is_refused() {
    let mut replaced = BTreeMap::new();
    replaced.insert(
        "signed_out.html".to_owned(),
        "{% extends \"base.html\" %}{% block main %}<p class=\"ours\">{{ t.signed_out_heading }} \
         {{ sign_in_again }}</p>{% endblock %}"
            .to_owned(),
    );
    let pages = Pages::new(&replaced, &[]).unwrap();
    pages.check().unwrap();
    let html = pages.signed_out(&chrome(Lang::It), "/a<b");
    assert!(
        html.contains("<p class=\"ours\">Sei uscito &#x2f;a&lt;b</p>"),
        "{html}"
    );

    replaced.insert("error.html".to_owned(), "{{ t.no_such_string }}".to_owned());
    let err = Pages::new(&replaced, &[]).unwrap().check().unwrap_err();
    assert!(err.contains("error.html"), "{err}");
    replaced.insert("error.html".to_owned(), "{% if %}".to_owned());
    assert!(Pages::new(&replaced, &[]).is_err(), "a syntax error");
}

#[test]
fn an_app_s_colours_are_a_stylesheet_of_its_own_under_a_hashed_name() {
    let pages = Pages::new(
        &BTreeMap::new(),
        &[(
            "shop".to_owned(),
            ":root { --idg-accent: #0b5d1e; }".to_owned(),
        )],
    )
    .unwrap();
    let path = pages.app_css("shop").unwrap().to_owned();
    assert!(path.starts_with("/web-login/static/app-shop."), "{path}");
    assert!(pages.assets.response(&path).is_some());
    assert!(pages.app_css("other").is_none());
    let c = Chrome {
        app_css: Some(&path),
        ..chrome(Lang::En)
    };
    let html = pages.chooser(&c, &[]);
    assert!(html.contains(&path.replace('/', "&#x2f;")), "{html}");
}
