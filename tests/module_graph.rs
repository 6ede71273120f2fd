//! No cycles between idgate's top-level modules: each module's code (its file, its folder, not
//! its tests or comments) may use modules below it, never one that uses it back. A cycle makes
//! two modules one in all but name: neither can be read, tested or changed alone. The graph is
//! read from the sources (`crate::<module>` paths), so a new cycle fails here, naming it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The `.rs` files of a module: `src/<name>.rs` and everything under `src/<name>/`, without the
/// test and fuzz files.
fn files_of(name: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let single = src().join(format!("{name}.rs"));
    if single.exists() {
        files.push(single);
    }
    let mut dirs = vec![src().join(name)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && !matches!(
                    path.file_name().and_then(|n| n.to_str()),
                    Some("tests.rs" | "fuzz.rs")
                )
            {
                files.push(path);
            }
        }
    }
    files
}

/// The code of `path`: without comment lines and without an inline `#[cfg(test)] mod tests`.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text
        .split("#[cfg(test)]\nmod tests {")
        .next()
        .unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules `code` names: `crate::x…` and `use crate::{x, y::…}`.
fn uses(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            group
                .split(',')
                .map(|part| part.trim().split("::").next().unwrap_or(""))
                .collect()
        } else {
            vec![rest
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("")]
        };
        found.extend(
            names
                .into_iter()
                .filter(|n| modules.contains(*n))
                .map(str::to_owned),
        );
    }
    found
}

/// A cycle through `start`, if there is one: the modules in order, `start` first and last.
fn cycle_from(start: &str, graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    let mut path = vec![start.to_owned()];
    let mut seen = BTreeSet::new();
    fn walk(
        at: &str,
        start: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in graph.get(at).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(next, start, graph, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    walk(start, start, graph, &mut path, &mut seen).then_some(path)
}

#[test]
fn no_module_uses_a_module_that_uses_it_back() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let modules: BTreeSet<String> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';').to_owned())
        .collect();
    assert!(modules.len() >= 20, "{modules:?}");
    let mut graph = BTreeMap::new();
    for module in &modules {
        let files = files_of(module);
        assert!(!files.is_empty(), "no source for module `{module}`");
        let mut used = BTreeSet::new();
        for file in files {
            used.extend(uses(&code_of(&file), &modules));
        }
        used.remove(module);
        graph.insert(module.clone(), used);
    }
    // The reading itself: `routes` uses `state`, and `state` uses `store`.
    assert!(graph["routes"].contains("state") && graph["state"].contains("store"));
    for module in &modules {
        if let Some(cycle) = cycle_from(module, &graph) {
            panic!(
                "a module cycle: {} (each uses the next: see their `crate::` paths)",
                cycle.join(" -> ")
            );
        }
    }
}

#[test]
fn a_cycle_is_found_when_there_is_one() {
    let modules: BTreeSet<String> = ["a", "b", "c"].map(str::to_owned).into();
    let mut graph = BTreeMap::new();
    graph.insert("a".to_owned(), uses("use crate::{b, x::y};", &modules));
    graph.insert("b".to_owned(), uses("let v = crate::c::f();", &modules));
    graph.insert("c".to_owned(), uses("use crate::a::T;", &modules));
    assert_eq!(
        cycle_from("a", &graph),
        Some(["a", "b", "c", "a"].map(str::to_owned).to_vec())
    );
    graph.insert("c".to_owned(), BTreeSet::new());
    assert_eq!(cycle_from("a", &graph), None);
}
