//! The documented example config (`packaging/idgate.toml`, installed as `/etc/idgate/idgate.toml`)
//! against the keys the code accepts: every key is in the example, with a comment, and every key
//! the example shows is one the code accepts. The accepted keys are read from the parser itself:
//! every section refuses unknown keys, and its refusal lists the ones it knows, so probing each
//! section with an unknown key walks the whole tree (tables, maps of tables, arrays of tables,
//! the `kind` variants of `[store]` and `[users]`).

use std::collections::BTreeSet;

use super::super::RawConfig;

/// An unknown key no section has.
const PROBE: &str = "zz_probe";

/// What the parser says of `text`, or "" when it accepts it.
fn refusal(text: &str) -> String {
    match toml::from_str::<RawConfig>(text) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

/// The names a refusal lists after `unknown {what} `zz_probe``: `expected one of `a`, `b``.
fn listed(refusal: &str, what: &str) -> Option<Vec<String>> {
    let at = refusal.find(&format!("unknown {what} `{PROBE}`"))?;
    let line = refusal[at..].lines().next().unwrap_or_default();
    Some(
        line.split('`')
            .skip(3)
            .step_by(2)
            .map(str::to_owned)
            .collect(),
    )
}

/// A section of the tree: how to write its header, and the lines its table must hold first (a
/// variant's `kind`).
#[derive(Clone)]
struct Section {
    /// `server`, `apps.k.providers.k` (`k`: any key of a map), …
    path: String,
    /// `[[…]]` rather than `[…]`.
    array: bool,
    /// The headers and lines that must come before this section's own header.
    before: String,
    /// Lines inside this section's table before the probe (`kind = "redis"`).
    inside: String,
}

impl Section {
    fn text(&self, body: &str) -> String {
        let header = if self.array {
            format!("[[{}]]", self.path)
        } else {
            format!("[{}]", self.path)
        };
        format!("{}{header}\n{}{body}", self.before, self.inside)
    }

    fn child(&self, name: &str, array: bool) -> Section {
        Section {
            path: format!("{}.{name}", self.path),
            array,
            before: self.text(""),
            inside: String::new(),
        }
    }
}

/// What the parser accepts: (section pattern, key) for the keys that hold values, and the
/// patterns of the sections (tables, maps' entries, arrays of tables).
#[derive(Default)]
struct Accepted {
    keys: BTreeSet<(String, String)>,
    sections: BTreeSet<String>,
    /// Tables of the operator's own names (`[headers.custom]`: field → header name), checked
    /// when the config is validated rather than parsed.
    open: BTreeSet<String>,
}

/// Walks the sections under `section` (`None`: the top level) into `found`.
fn accepted(section: Option<&Section>, found: &mut Accepted, depth: usize) {
    assert!(depth < 8, "the config tree is deeper than expected");
    let probe_line = format!("{PROBE} = 1\n");
    let text = section.map_or(probe_line.clone(), |s| s.text(&probe_line));
    let err = refusal(&text);
    let Some(fields) = listed(&err, "field") else {
        panic!("probing {text:?} did not list the section's keys: {err}");
    };
    let pattern = section.map_or(String::new(), |s| s.path.clone());
    if !pattern.is_empty() {
        found.sections.insert(pattern.clone());
    }
    for field in fields {
        let as_table = match section {
            Some(s) => s.child(&field, false),
            None => Section {
                path: field.clone(),
                array: false,
                before: String::new(),
                inside: String::new(),
            },
        };
        let err = refusal(&as_table.text(&probe_line));
        if listed(&err, "field").is_some() {
            accepted(Some(&as_table), found, depth + 1);
        } else if err.contains("missing field `kind`") {
            let err = refusal(&as_table.text(&format!("kind = \"{PROBE}\"\n")));
            let variants = listed(&err, "variant").expect("the kinds of a tagged section");
            found
                .keys
                .insert((as_table.path.clone(), "kind".to_owned()));
            for variant in variants {
                let mut v = as_table.clone();
                v.inside = format!("kind = \"{variant}\"\n");
                accepted(Some(&v), found, depth + 1);
            }
        } else if err.contains("expected struct") || err.contains("expected a map") {
            // A map of tables (`[apps.<id>]`): its entries' keys.
            accepted(Some(&as_table.child("k", false)), found, depth + 1);
        } else if err.contains("invalid type: integer `1`, expected a string") {
            // A map of strings under names of the operator's.
            found.keys.insert((pattern.clone(), field));
            found.open.insert(as_table.path.clone());
        } else {
            let mut as_array = as_table.clone();
            as_array.array = true;
            if listed(&refusal(&as_array.text(&probe_line)), "field").is_some() {
                accepted(Some(&as_array), found, depth + 1);
            } else {
                found.keys.insert((pattern.clone(), field));
            }
        }
    }
}

/// The other names serde accepts for a key (`#[serde(alias)]`): the example shows the key under
/// its own name.
const ALIASES: [(&str, &str); 1] = [("session", "absolute_timeout")];

/// Every (section, key) the example shows, commented out or not, and whether a comment goes
/// with it (on its line, or a line of prose above it in the same block); and every section
/// header it shows.
fn in_example(text: &str) -> (Vec<(String, String, bool)>, BTreeSet<String>) {
    let mut headers = BTreeSet::new();
    let mut out = Vec::new();
    let mut section = String::new();
    let lines: Vec<&str> = text.lines().collect();
    let uncommented = |l: &str| l.trim_start_matches('#').trim().to_owned();
    let is_key = |l: &str| {
        let l = uncommented(l);
        let name: String = l
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        (!name.is_empty() && l[name.len()..].trim_start().starts_with('=')).then_some(name)
    };
    let is_header = |l: &str| {
        let l = uncommented(l);
        let inner = l.trim_start_matches('[');
        (l.starts_with('[') && inner.contains(']'))
            .then(|| inner[..inner.find(']').unwrap_or(0)].to_owned())
            .filter(|h| {
                h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-*".contains(c))
            })
    };
    for (i, line) in lines.iter().enumerate() {
        if let Some(header) = is_header(line) {
            headers.insert(header.clone());
            section = header;
            continue;
        }
        let Some(key) = is_key(line) else { continue };
        let trailing = line.trim_start_matches('#').contains(" # ");
        let mut prose_above = false;
        for above in lines[..i].iter().rev() {
            if above.trim().is_empty() || above.trim() == "#" {
                break;
            }
            if above.trim_start().starts_with('#')
                && is_key(above).is_none()
                && is_header(above).is_none()
            {
                prose_above = true;
                break;
            }
        }
        let documented = trailing || prose_above;
        // An inline table (`keys = { id = "sub", … }`) is a section, with its own keys.
        if let Some(inner) = line.split_once("= {").map(|(_, rest)| rest) {
            let table = format!("{section}.{key}");
            let inner = inner.split('}').next().unwrap_or_default();
            for pair in inner.split(',') {
                if let Some(name) = is_key(pair.trim()) {
                    out.push((table.clone(), name, documented));
                }
            }
            headers.insert(table);
            continue;
        }
        out.push((section.clone(), key, documented));
    }
    (out, headers)
}

/// Whether the example's section `written` (`apps.web.providers.dev`) is the pattern `pattern`
/// (`apps.k.providers.k`, `k` standing for any name).
fn same_section(pattern: &str, written: &str) -> bool {
    let (p, w): (Vec<&str>, Vec<&str>) =
        (pattern.split('.').collect(), written.split('.').collect());
    p.len() == w.len() && p.iter().zip(&w).all(|(p, w)| p == w || *p == "k")
}

#[test]
fn every_key_the_code_accepts_is_in_the_example_with_a_comment_and_no_other() {
    let mut found = Accepted::default();
    accepted(None, &mut found, 0);
    let accepted_keys: BTreeSet<_> = found
        .keys
        .iter()
        .filter(|(s, k)| !ALIASES.contains(&(s.as_str(), k.as_str())))
        .cloned()
        .collect();
    // The walk reached the depths: a provider's keys, a variant's, an array's.
    for (section, key) in [
        ("apps.k.providers.k", "client_id"),
        ("store", "urls"),
        ("users", "database"),
        ("jwt.verification_keys", "key_file"),
        ("", "mia_config"),
    ] {
        assert!(
            accepted_keys.contains(&(section.to_owned(), key.to_owned())),
            "the walk did not find [{section}] {key}: {accepted_keys:?}"
        );
    }
    let example_text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/idgate.toml"),
    )
    .unwrap_or_default();
    let (example, headers) = in_example(&example_text);
    let sections_missing: Vec<_> = found
        .sections
        .iter()
        .filter(|p| !headers.iter().any(|h| same_section(p, h)))
        .collect();

    assert!(example.len() > 50, "{example:?}");
    let mut missing = Vec::new();
    let mut undocumented = Vec::new();
    for (section, key) in &accepted_keys {
        let shown: Vec<_> = example
            .iter()
            .filter(|(s, k, _)| k == key && same_section(section, s))
            .collect();
        let as_header = headers
            .iter()
            .any(|h| same_section(format!("{section}.{key}").trim_start_matches('.'), h));
        if shown.is_empty() && as_header {
            continue;
        }
        if shown.is_empty() {
            missing.push(format!("[{section}] {key}"));
        } else if !shown.iter().any(|(_, _, documented)| *documented) {
            undocumented.push(format!("[{section}] {key}"));
        }
    }

    let unknown: Vec<_> = example
        .iter()
        .filter(|(s, k, _)| {
            !found.open.iter().any(|open| same_section(open, s))
                && !found
                    .keys
                    .iter()
                    .any(|(section, key)| key == k && same_section(section, s))
        })
        .map(|(s, k, _)| format!("[{s}] {k}"))
        .collect();
    assert!(
        sections_missing.is_empty()
            && missing.is_empty()
            && undocumented.is_empty()
            && unknown.is_empty(),
        "packaging/idgate.toml and the keys the code accepts disagree:\n\
         sections it does not show: {sections_missing:?}\n\
         keys it does not show: {missing:?}\n\
         keys it shows without a comment: {undocumented:?}\n\
         keys it shows that the code does not accept: {unknown:?}"
    );
}
