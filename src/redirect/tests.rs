//! The redirect rules against the project's payload corpus (made by
//! `tests/fixtures/make-redirect-payloads.py`), the must-accept list, and the property that
//! whatever is accepted lands on the site's own origin or an allow-listed one.

use super::*;

const PAYLOADS: &str = include_str!("../../tests/fixtures/redirect-payloads.jsonl");
const ACCEPTED: &str = include_str!("../../tests/fixtures/redirect-accepted.jsonl");

/// The allow-list the corpus is written against: the site itself and a second origin with a
/// path prefix.
fn allowed() -> Vec<AllowedTarget> {
    vec![
        AllowedTarget::parse("http://127.0.0.1:8080/").unwrap(),
        AllowedTarget::parse("https://app.example.com/portal").unwrap(),
    ]
}

fn instantiate(template: &str) -> String {
    template
        .replace("{{IP}}", "127.0.0.1")
        .replace("{{PORT}}", "8080")
}

/// `(class, text)` of each line of a corpus file, placeholders filled in.
fn lines(jsonl: &str, field: &str) -> Vec<(String, String)> {
    jsonl
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                v["class"].as_str().unwrap().to_owned(),
                instantiate(v[field].as_str().unwrap()),
            )
        })
        .collect()
}

fn payloads() -> Vec<(String, String)> {
    lines(PAYLOADS, "payload")
}

fn accepted() -> Vec<(String, String)> {
    lines(ACCEPTED, "target")
}

/// Sites a browser may be on when it follows the redirect.
use super::fuzz::assert_lands_safely;

#[test]
fn every_corpus_payload_is_refused() {
    let payloads = payloads();
    assert!(payloads.len() >= 800, "only {} payloads", payloads.len());
    let accepted: Vec<_> = payloads
        .iter()
        .filter_map(|(class, p)| validate(p, &allowed()).ok().map(|out| (class, p, out)))
        .collect();
    assert!(accepted.is_empty(), "accepted: {accepted:#?}");
}

#[test]
fn the_corpus_covers_every_class() {
    let payloads = payloads();
    for (class, least) in [
        ("scheme-relative", 50),
        ("backslash", 50),
        ("whitespace-control", 50),
        ("unicode-whitespace", 50),
        ("header-injection", 20),
        ("userinfo", 50),
        ("encoding", 50),
        ("unicode-lookalike", 50),
        ("idn", 50),
        ("dot-segments", 50),
        ("scheme", 50),
        ("other-host", 50),
        ("length", 5),
    ] {
        let n = payloads.iter().filter(|(c, _)| c == class).count();
        assert!(n >= least, "class {class}: {n} payloads");
    }
    // The known tricks the issue names, by their exact form.
    for trick in [
        "/%09/evil.example",
        "/\t/evil.example",
        "/%5Cevil.example",
        "/.//evil.example",
        "/./%2F/evil.example",
        "/a/..//evil.example",
        "/\u{FF0F}evil.example",
        "/\u{FF3C}evil.example",
        "//evil\u{3002}example",
        "http://127.0.0.1:8080@evil.example/",
        "http://evil.example#@127.0.0.1:8080/",
        "http://evil.example\\@127.0.0.1:8080/",
        "java\tscript:alert(1)",
        "https:/\\evil.example",
        "\\/\\/evil.example",
        "///evil.example",
        "%2F%2Fevil.example",
        "/%252F%252Fevil.example",
        "evil.example.",
        "https://xn--pp-8cd.example.com/portal",
        "http://3405803783/",
        "http://0313.0.0161.07/",
        "http://[2001:db8::1]/",
        "/\u{0}//evil.example",
        "/\r\nLocation: http://evil.example",
        "/\u{3000}/evil.example",
    ] {
        assert!(
            payloads.iter().any(|(_, p)| p.contains(trick)),
            "corpus lacks {trick:?}"
        );
    }
    assert!(payloads.iter().any(|(_, p)| p.len() > MAX_LEN));
}

#[test]
fn every_must_accept_target_is_accepted_and_lands_safely() {
    let accepted = accepted();
    assert!(accepted.len() >= 40);
    for (_, t) in &accepted {
        let out = validate(t, &allowed()).unwrap_or_else(|e| panic!("{t:?} refused: {e}"));
        assert_lands_safely(t, &out, &allowed());
    }
    // Each class is there, and the absolute ones come back normalised.
    for class in ["relative", "site", "portal"] {
        assert!(accepted.iter().any(|(c, _)| c == class), "{class}");
    }
    assert_eq!(
        validate("HTTP://127.0.0.1:8080/upper", &allowed()).as_deref(),
        Ok("http://127.0.0.1:8080/upper")
    );
    assert_eq!(
        validate("https://APP.example.com:443/portal/a/../b", &allowed()).as_deref(),
        Ok("https://app.example.com/portal/b")
    );
}

#[test]
fn without_an_allow_list_only_relative_paths_pass() {
    for (class, t) in accepted() {
        assert_eq!(
            validate(&t, &[]).is_ok(),
            class == "relative",
            "{class}: {t:?}"
        );
    }
}

/// Deterministic xorshift, so that a failure names a reproducible input.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % 1_000_003).unwrap()
    }
}

/// The property over the corpus: every payload, every must-accept target, and strings derived
/// from them (prefixes added and removed, decoded once, glued together) and random sequences of
/// the corpus's building blocks. Most are refused; whatever is accepted must land safely.
#[test]
fn whatever_is_accepted_lands_on_the_site_or_an_allowed_origin() {
    let allowed = allowed();
    let payloads: Vec<String> = payloads().into_iter().map(|(_, p)| p).collect();
    let targets: Vec<String> = accepted().into_iter().map(|(_, t)| t).collect();
    let mut candidates: Vec<String> = Vec::new();
    for p in payloads.iter().chain(&targets) {
        let decoded = percent_decode_str(p).decode_utf8_lossy().into_owned();
        let tail: String = p.chars().skip(1).collect();
        let tail2: String = p.chars().skip(2).collect();
        candidates.extend([
            p.clone(),
            format!("/{p}"),
            format!("/a{p}"),
            format!("/a/{p}"),
            format!("/a/..{p}"),
            tail,
            tail2,
            decoded,
            p.replace("//", "/"),
            p.replace('\\', "/"),
            format!("http://127.0.0.1:8080{p}"),
            format!("https://app.example.com/portal{p}"),
        ]);
    }
    for t in &targets {
        for p in payloads.iter().step_by(7) {
            candidates.push(format!("{t}{p}"));
        }
    }
    const PIECES: [&str; 40] = [
        "/",
        "//",
        "\\",
        ".",
        "..",
        "%2e",
        "%2E%2e",
        "%2F",
        "%2f",
        "%252F",
        "%5C",
        "%255c",
        "@",
        ":",
        "?",
        "#",
        ";",
        "%3F",
        "%23",
        "%40",
        " ",
        "%20",
        "\t",
        "%09",
        "%0a",
        "a",
        "evil",
        ".example",
        "127.0.0.1",
        ":8080",
        "app.example.com",
        "/portal",
        "http:",
        "https:",
        "javascript:",
        "\u{FF0F}",
        "%EF%BC%8F",
        "%EF%BC%8E",
        "%C0%AF",
        "%25",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..40_000 {
        let n = 1 + rng.next() % 8;
        let mut s = String::new();
        if rng.next().is_multiple_of(3) {
            s.push('/');
        }
        for _ in 0..n {
            s.push_str(PIECES[rng.next() % PIECES.len()]);
        }
        candidates.push(s);
    }
    let mut accepted = 0;
    for raw in &candidates {
        for list in [&allowed[..], &[]] {
            if let Ok(out) = validate(raw, list) {
                accepted += 1;
                assert_lands_safely(raw, &out, list);
            }
        }
    }
    // The property is not vacuous: many candidates pass, relative and absolute.
    assert!(accepted > 5_000, "only {accepted} candidates accepted");
}

#[test]
fn empty_overlong_and_malformed_targets_are_refused_with_their_reason() {
    assert_eq!(validate("", &allowed()), Err(RedirectError::Empty));
    let long = format!("/{}", "a".repeat(MAX_LEN));
    assert_eq!(validate(&long, &allowed()), Err(RedirectError::TooLong));
    assert_eq!(
        validate(&long[..MAX_LEN], &allowed()).as_deref(),
        Ok(&long[..MAX_LEN])
    );
    assert_eq!(
        validate("/\\evil.example", &allowed()),
        Err(RedirectError::BadCharacters)
    );
    assert_eq!(
        validate("/caf\u{E9}", &allowed()),
        Err(RedirectError::BadCharacters)
    );
    for bad in [
        "/%u002F",
        "/%2",
        "/%C0%AF",
        "/%0A",
        "/%E2%80%8B",
        "/%252525252F",
    ] {
        assert_eq!(
            validate(bad, &allowed()),
            Err(RedirectError::BadEncoding),
            "{bad}"
        );
    }
    // Four layers of encoding are unwrapped (and the `//` found); a fifth is refused outright.
    assert_eq!(
        validate("/%2525252Fevil.example", &allowed()),
        Err(RedirectError::NotAllowed)
    );
    assert!(validate("/a%2525252Fb", &allowed()).is_ok());
    assert_eq!(
        validate("/a%252525252Fb", &allowed()),
        Err(RedirectError::BadEncoding)
    );
}

#[test]
fn accepts_relative_paths_and_allowed_origins() {
    for ok in [
        "/",
        "/dashboard",
        "/a/b?x=1&y=2#frag",
        "/search?q=%2F%2Fnot-a-host",
        "/reports/q?x=1&y=a%20b",
        "/caf%C3%A9",
        "http://127.0.0.1:8080/",
        "http://127.0.0.1:8080/deep/page?x=1",
        "https://app.example.com/portal",
        "https://app.example.com/portal/settings",
    ] {
        assert!(validate(ok, &allowed()).is_ok(), "should accept {ok}");
    }
}

/// The payloads of the first version of this module; each is also in the corpus.
#[test]
fn refuses_open_redirect_payloads() {
    let payloads = [
        "//evil.example",
        "///evil.example",
        "////evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "\\/evil.example",
        "/%2Fevil.example",
        "/%2fevil.example",
        "%2F%2Fevil.example",
        "/%5Cevil.example",
        "/%5cevil.example",
        "/%252F%252Fevil.example",
        "/%09/evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r\nLocation: http://evil.example",
        " //evil.example",
        "/ /evil.example",
        "%20//evil.example",
        "/\u{0}/evil.example",
        "https://evil.example/",
        "http://evil.example/",
        "https:evil.example",
        "http:/evil.example",
        "http:\\\\evil.example",
        "HTTP://evil.example",
        "//127.0.0.1:8080@evil.example",
        "http://127.0.0.1:8080@evil.example/",
        "http://user:pass@127.0.0.1:8080/",
        "http://user@127.0.0.1:8080/",
        "http://:pass@127.0.0.1:8080/",
        "http://127.0.0.1:8080.evil.example/",
        "http://127.0.0.1:1/",
        "https://127.0.0.1:8080/",
        "https://app.example.com/portalevil",
        "https://app.example.com/other",
        "https://app.example.com.evil.example/portal",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "javascript://%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "ftp://127.0.0.1:8080/",
        "file:///etc/passwd",
        "evil.example",
        "@evil.example",
        "/\u{3000}/evil.example",
    ];
    let corpus: Vec<String> = self::payloads().into_iter().map(|(_, p)| p).collect();
    for p in payloads {
        assert!(validate(p, &allowed()).is_err(), "should refuse {p:?}");
        assert!(corpus.iter().any(|c| c == p), "{p:?} is not in the corpus");
    }
}

#[test]
fn allowed_targets_must_be_plain_http_origins() {
    assert!(AllowedTarget::parse("javascript:alert(1)").is_err());
    assert!(AllowedTarget::parse("http://u:p@host/").is_err());
    assert!(AllowedTarget::parse("not a url").is_err());
    // A host alone is not enough (another scheme), nor the scheme alone (no host); user
    // information is refused whichever half of it is there.
    assert!(AllowedTarget::parse("ftp://app.example.com/").is_err());
    assert!(AllowedTarget::parse("ws://app.example.com/").is_err());
    assert!(AllowedTarget::parse("http://u@app.example.com/").is_err());
    assert!(AllowedTarget::parse("http://:p@app.example.com/").is_err());
    assert!(AllowedTarget::parse("https://app.example.com/").is_ok());
}

#[test]
fn an_absolute_target_whose_serialisation_outgrows_the_limit_is_refused() {
    // `"` is kept raw by the target and escaped (`%22`) by the serialisation: 2000 of them
    // would come back three times as long, over the limit (found by fuzzing).
    let raw = format!("https://app.example.com/portal/{}", "\"".repeat(2000));
    assert!(raw.len() <= MAX_LEN);
    assert_eq!(validate(&raw, &allowed()), Err(RedirectError::TooLong));
    let fits = format!("https://app.example.com/portal/{}", "\"".repeat(100));
    let out = validate(&fits, &allowed()).unwrap();
    assert_eq!(validate(&out, &allowed()).as_deref(), Ok(out.as_str()));
    // Exactly at the limit once serialised (31 + 3 × 600 + 217 bytes), and one byte over.
    let at = |extra: usize| {
        format!(
            "https://app.example.com/portal/{}{}",
            "\"".repeat(600),
            "a".repeat(217 + extra)
        )
    };
    assert_eq!(validate(&at(0), &allowed()).map(|o| o.len()), Ok(MAX_LEN));
    assert_eq!(validate(&at(1), &allowed()), Err(RedirectError::TooLong));
}
