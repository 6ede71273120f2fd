//! The development configurations of `dev/` (idgate.toml, nginx.conf) filled for a test, and the
//! copy of the shipped snippets an Nginx under test includes: what `scripts/lib/dev.sh` and
//! `scripts/lib/render.py` do for the demo and the benchmarks, with the same rules, so that the
//! three run one configuration.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::repo;

/// `dev/<template>` with its fields filled from `values`: `{{NAME}}` takes NAME's value,
/// `{{NAME|default}}` the default when none is given (`\n` in a default is a new line). A field
/// with neither, or a value for a field the template does not have, fails the test.
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let path = repo().join("dev").join(template);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let values: HashMap<&str, &str> = values.iter().copied().collect();
    let mut used = Vec::new();
    let (out, _) = fill(&text, 0, false, &values, &mut used);
    for name in values.keys() {
        assert!(used.contains(name), "dev/{template} has no field {name}");
    }
    out
}

/// Renders `text` from byte `i`; inside a default (`nested`), stops at its closing `}}` and
/// returns where that is.
fn fill<'a>(
    text: &str,
    mut i: usize,
    nested: bool,
    values: &HashMap<&'a str, &'a str>,
    used: &mut Vec<&'a str>,
) -> (String, usize) {
    let mut out = String::new();
    while i < text.len() {
        let rest = &text[i..];
        if let Some(field) = rest.strip_prefix("{{") {
            let len = field
                .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
                .unwrap_or(field.len());
            let name = &field[..len];
            assert!(!name.is_empty(), "a field without a name at byte {i}");
            let mut j = i + 2 + len;
            let mut default = None;
            if text[j..].starts_with('|') {
                let (d, end) = fill(text, j + 1, true, values, used);
                default = Some(d);
                j = end;
            }
            assert!(text[j..].starts_with("}}"), "field {name} is not closed");
            i = j + 2;
            match (values.get_key_value(name), default) {
                (Some((key, value)), _) => {
                    used.push(key);
                    out.push_str(value);
                }
                (None, Some(default)) => out.push_str(&default.replace("\\n", "\n")),
                (None, None) => panic!("no value for field {name}"),
            }
        } else if nested && rest.starts_with("}}") {
            return (out, i);
        } else {
            let c = rest.chars().next().unwrap_or_default();
            out.push(c);
            i += c.len_utf8();
        }
    }
    (out, i)
}

/// A copy of the snippets of `from` (`nginx/` as shipped) in `to`, their includes pointing at
/// the copies and the decision microcache's files under `cache`, as `dev_nginx_dir` does.
pub fn copy_snippets(from: &Path, to: &Path, cache: &Path) -> PathBuf {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("idgate-") && name.ends_with(".conf") {
            let text = std::fs::read_to_string(&path)
                .unwrap()
                .replace("/etc/nginx/snippets/idgate/", &format!("{}/", to.display()))
                .replace("/run/nginx-idgate-decisions", &cache.display().to_string());
            std::fs::write(to.join(&name), text).unwrap();
        }
    }
    to.to_owned()
}
