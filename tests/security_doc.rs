//! `docs/security.md` names, for every guarantee, the test that fails if it breaks. This keeps
//! the names true: each `` `file::test` `` reference must name a function of `tests/file.rs`
//! (or of the files of `tests/file/`, a target of several files), and each
//! `` `module::tests…` `` reference a module of `src/` with unit tests. And every lie of the
//! development IdP (`tests/js/liar.mjs`) is listed there, next to the test plan item it
//! reproduces.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::path::Path;

#[test]
fn every_test_the_security_model_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/security.md")).unwrap();
    let mut checked = 0;
    for reference in doc.split('`').skip(1).step_by(2) {
        let Some((file, rest)) = reference.split_once("::") else {
            continue;
        };
        if !file.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') || file.is_empty() {
            continue;
        }
        let test_file = root.join("tests").join(format!("{file}.rs"));
        // A test target of several files (`tests/file/main.rs`): its checks may live in any.
        let test_dir = root.join("tests").join(file);
        if test_file.is_file() || test_dir.join("main.rs").is_file() {
            let text = if test_file.is_file() {
                std::fs::read_to_string(&test_file).unwrap()
            } else {
                let mut text = String::new();
                for entry in std::fs::read_dir(&test_dir).unwrap() {
                    text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
                }
                text
            };
            let name = rest.split("::").next().unwrap();
            assert!(
                text.contains(&format!("fn {name}(")),
                "docs/security.md names `{reference}`, but tests/{file}.rs has no fn {name}"
            );
        } else {
            let module = root.join("src").join(file);
            let found = module.with_extension("rs").is_file() || module.is_dir();
            assert!(found, "docs/security.md names `{reference}`: no src/{file}");
            let segments: Vec<&str> = rest.split("::").collect();
            if let Some(name) = segments
                .last()
                .filter(|n| **n != "tests" && **n != "handle")
            {
                let mut sources = String::new();
                let mut paths = vec![
                    module.with_extension("rs"),
                    module.join("tests.rs"),
                    module.join("mod.rs"),
                ];
                // Each nested module the reference walks through (`login::cookie::tests::x`
                // looks in src/<file>/login.rs and src/<file>/login/cookie.rs, with their
                // tests.rs).
                let mut nested = module.clone();
                for segment in &segments[..segments.len() - 1] {
                    nested = nested.join(segment);
                    paths.push(nested.with_extension("rs"));
                    paths.push(nested.join("tests.rs"));
                }
                for path in paths {
                    sources.push_str(&std::fs::read_to_string(path).unwrap_or_default());
                }
                assert!(
                    sources.contains(&format!("fn {name}(")),
                    "docs/security.md names `{reference}`, but no fn {name} is there"
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} references checked");
}

#[test]
fn every_lie_of_the_development_idp_is_in_the_security_model() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/security.md")).unwrap();
    let liar = std::fs::read_to_string(root.join("tests/js/liar.mjs")).unwrap();
    let list = liar
        .split("export const LIES = [")
        .nth(1)
        .and_then(|rest| rest.split("];").next())
        .expect("liar.mjs exports LIES");
    let lies: Vec<&str> = list
        .split(',')
        .map(|l| l.trim().trim_matches('\''))
        .filter(|l| !l.is_empty())
        .collect();
    assert!(lies.len() >= 24, "only {} lies read: {lies:?}", lies.len());
    let missing: Vec<&&str> = lies
        .iter()
        .filter(|l| !doc.contains(&format!("`{l}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/security.md does not list the lies {missing:?} next to the plan item they reproduce"
    );
}
