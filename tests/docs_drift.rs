//! Documents that cannot drift from the code: the endpoint table in `routes/mod.rs` against the
//! dispatcher and the README, the module map in `lib.rs` against the modules, and every shipped
//! Nginx snippet against the tests that include it. Each check reads the files themselves, so a
//! new endpoint, module or snippet that is not written down fails here, naming it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: impl AsRef<Path>) -> String {
    let path = repo().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text between `start` (included) and the next line starting with `## ` after it.
fn section<'a>(text: &'a str, start: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("no `{start}` section"));
    let rest = &text[from + start.len()..];
    let to = rest.find("\n## ").unwrap_or(rest.len());
    &text[from..from + start.len() + to]
}

/// Every backticked path (`/…`) in `text`, without a query and with `{templates}` cut off at
/// the first one (`/apps/{appId}/providers` → `/apps/`).
fn backticked_paths(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with('/') && !s.starts_with("//"))
        .map(|s| {
            let s = s.split(['?', '[']).next().unwrap_or(s);
            s.split('{').next().unwrap_or(s).to_owned()
        })
        .collect()
}

/// The paths the dispatcher (`routes::handle` and `routes::endpoint`) matches: the string
/// literals of its arms, exact (`"/oauth/token"`) or prefixes (`starts_with("/apps/")`).
fn dispatched_paths(code: &str) -> BTreeSet<String> {
    let body = &code[code.find("pub async fn handle(").expect("routes::handle")
        ..code.find("fn is_known_path").expect("is_known_path")];
    body.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with('/'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_endpoint_the_dispatcher_serves_is_in_its_table_and_in_the_readme() {
    let code = read("src/routes/mod.rs");
    let table: String = code
        .lines()
        .filter(|l| l.starts_with("//! |"))
        .collect::<Vec<_>>()
        .join("\n");
    let documented = backticked_paths(&table);
    let dispatched = dispatched_paths(&code);
    assert!(dispatched.len() >= 20, "{dispatched:?}");
    for path in &dispatched {
        assert!(
            documented.contains(path.as_str()),
            "the dispatcher serves `{path}`, which the endpoint table in src/routes/mod.rs \
             does not list"
        );
    }
    // Each row links the handler that serves it (cargo doc checks the links resolve).
    for row in table.lines().skip(2) {
        assert!(
            row.split('|').nth(2).is_some_and(|h| h.contains("[`")),
            "a row of the endpoint table without its handler: {row}"
        );
    }
    let readme = read("README.md");
    let endpoints = backticked_paths(section(&readme, "## Endpoints"));
    for path in &documented {
        assert!(
            endpoints.contains(path.as_str()),
            "`{path}` is in the endpoint table of src/routes/mod.rs but not in the README's \
             Endpoints section"
        );
    }
}

#[test]
fn the_module_map_in_lib_rs_names_every_module_and_only_modules() {
    let lib = read("src/lib.rs");
    let modules: BTreeSet<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    assert!(modules.len() >= 20, "{modules:?}");
    let map: String = lib
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let named: BTreeSet<&str> = map
        .split("[`")
        .skip(1)
        .filter_map(|s| s.split("`]").next())
        .collect();
    for module in &modules {
        if *module == "fuzz" {
            continue; // `#[doc(hidden)]`: the fuzz targets' entry points, not part of the map
        }
        assert!(
            named.contains(module),
            "src/lib.rs's module map does not describe `{module}`"
        );
    }
    for name in &named {
        assert!(
            modules.contains(name),
            "src/lib.rs's module map names `{name}`, which is not a module"
        );
    }
}

#[test]
fn every_shipped_snippet_is_included_by_a_test() {
    // What the tests' Nginx configurations include: the snippets the harness names, and those
    // the shipped example site (which the harness serves) includes.
    let mut sources = String::new();
    for dir in ["tests", "tests/common"] {
        for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                sources.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let example = read("nginx/example-site.conf");
    let mut snippets = Vec::new();
    for entry in std::fs::read_dir(repo().join("nginx")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".conf") {
            snippets.push(name);
        }
    }
    assert!(snippets.len() >= 8, "{snippets:?}");
    // A snippet that includes another (`include …/idgate-proxy.conf;`) counts for it.
    let includes_of = |name: &str| read(format!("nginx/{name}"));
    for name in &snippets {
        let named_by_tests = sources.contains(name.as_str());
        let in_example = name != "example-site.conf" && example.contains(name.as_str());
        let in_a_tested_snippet = snippets
            .iter()
            .filter(|other| *other != name && sources.contains(other.as_str()))
            .any(|other| includes_of(other).contains(name.as_str()));
        assert!(
            named_by_tests || in_example || in_a_tested_snippet,
            "nginx/{name} is shipped but no test's Nginx includes it"
        );
    }
}
