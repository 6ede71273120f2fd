//! `[pages]` (a templates folder that replaces built-in pages) and `[apps.X.pages]` (an app's
//! brand: title, logo, colours, footer, default language), validated.
//!
//! Colours are `#rgb` / `#rrggbb` only (they are written into a stylesheet) and must keep the
//! pages readable: the accent colour is the link and button colour on white, the background
//! carries the footer's grey text, so each must reach WCAG AA contrast (4.5:1) or the config is
//! refused. A logo is a same-site path: the pages' CSP (`img-src 'self'`) loads nothing else.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;
use crate::pages::Lang;

/// `[pages]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPages {
    /// A folder of templates (`chooser.html`, `callback.html`, `error.html`,
    /// `signed_out.html`, `base.html`) each replacing the built-in page of its name.
    pub templates: Option<PathBuf>,
}

/// `[apps.X.pages]`.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawAppPages {
    /// The app's name on its pages; default: the app's id.
    pub title: Option<String>,
    /// A same-site path to the logo shown in the pages' header.
    pub logo_url: Option<String>,
    /// Buttons and links: `#rrggbb`, at least 4.5:1 against white.
    pub accent_color: Option<String>,
    /// The page's background: `#rrggbb`, light enough for grey text (4.5:1).
    pub background_color: Option<String>,
    /// A line at the bottom of every page.
    pub footer: Option<String>,
    /// `en` or `it`: the language when the browser's `Accept-Language` names none idgate
    /// speaks.
    pub language: Option<String>,
}

/// An app's brand, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppPages {
    /// The app's name on its pages; `None`: its id.
    pub title: Option<String>,
    pub logo_url: Option<String>,
    /// `#rrggbb`, lowercase.
    pub accent_color: Option<String>,
    /// `#rrggbb`, lowercase.
    pub background_color: Option<String>,
    pub footer: Option<String>,
    pub language: Lang,
}

impl AppPages {
    /// The app's own stylesheet: its colours as the custom properties of idgate's stylesheet;
    /// `None` without colours of its own.
    pub fn stylesheet(&self) -> Option<String> {
        if self.accent_color.is_none() && self.background_color.is_none() {
            return None;
        }
        let mut css = String::from(":root {\n");
        if let Some(a) = &self.accent_color {
            css.push_str(&format!(
                "  --idg-accent: {a};\n  --idg-accent-text: {};\n",
                text_on(a)
            ));
        }
        if let Some(b) = &self.background_color {
            css.push_str(&format!("  --idg-bg: {b};\n"));
        }
        css.push_str("}\n");
        Some(css)
    }
}

/// The page templates that replace built-in ones, by file name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PagesConfig {
    pub templates: BTreeMap<String, String>,
}

/// Longest title or footer.
const MAX_TEXT: usize = 200;
/// Largest template file.
const MAX_TEMPLATE: u64 = 64 * 1024;
/// The grey of secondary text (`--idg-muted` in the stylesheet), which the background carries.
const MUTED_TEXT: [u8; 3] = [0x4a, 0x55, 0x62];

pub(super) fn validate(
    raw: Option<RawPages>,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<PagesConfig, ConfigError> {
    let Some(dir) = raw.and_then(|r| r.templates) else {
        return Ok(PagesConfig::default());
    };
    let dir = resolve(&dir);
    let bad = |m: String| ConfigError::invalid("pages.templates", m);
    let entries = std::fs::read_dir(&dir).map_err(|e| bad(format!("{}: {e}", dir.display())))?;
    let mut templates = BTreeMap::new();
    for entry in entries {
        let entry = entry.map_err(|e| bad(e.to_string()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".html") {
            continue;
        }
        if !crate::pages::TEMPLATE_NAMES.contains(&name.as_str()) {
            return Err(bad(format!(
                "{name} replaces no page (the pages are {})",
                crate::pages::TEMPLATE_NAMES.join(", ")
            )));
        }
        let meta = entry.metadata().map_err(|e| bad(e.to_string()))?;
        if meta.len() > MAX_TEMPLATE {
            return Err(bad(format!("{name} is larger than {MAX_TEMPLATE} bytes")));
        }
        let text =
            std::fs::read_to_string(entry.path()).map_err(|e| bad(format!("{name}: {e}")))?;
        templates.insert(name, text);
    }
    // Every page must render with these templates, in every language, before they are used.
    crate::pages::Pages::new(&templates, &[])
        .and_then(|p| p.check())
        .map_err(bad)?;
    Ok(PagesConfig { templates })
}

pub(super) fn validate_app(key: &str, raw: Option<RawAppPages>) -> Result<AppPages, ConfigError> {
    let raw = raw.unwrap_or_default();
    let bad = |k: &str, m: String| ConfigError::invalid(format!("{key}.{k}"), m);
    let text = |k: &str, v: Option<String>| -> Result<Option<String>, ConfigError> {
        match v {
            Some(v)
                if v.trim().is_empty() || v.len() > MAX_TEXT || v.chars().any(char::is_control) =>
            {
                Err(bad(
                    k,
                    format!("1 to {MAX_TEXT} characters, no control characters"),
                ))
            }
            v => Ok(v),
        }
    };
    let logo_url = match raw.logo_url {
        Some(l) if !is_site_path(&l) => {
            return Err(bad(
                "logo_url",
                "a path on the site itself, such as /assets/logo.svg (the pages load no \
                 other origin)"
                    .into(),
            ))
        }
        l => l,
    };
    let accent_color = raw
        .accent_color
        .map(|c| colour(&c, "accent_color", [0xff; 3], key))
        .transpose()?;
    let background_color = raw
        .background_color
        .map(|c| colour(&c, "background_color", MUTED_TEXT, key))
        .transpose()?;
    let language = match raw.language.as_deref() {
        None => Lang::default(),
        Some(l) => Lang::parse(l)
            .filter(|lang| lang.tag() == l)
            .ok_or_else(|| bad("language", format!("`{l}`: one of en, it")))?,
    };
    Ok(AppPages {
        title: text("title", raw.title)?,
        logo_url,
        accent_color,
        background_color,
        footer: text("footer", raw.footer)?,
        language,
    })
}

/// `/x…`: a path on the site, not `//host` or `/\host`, visible ASCII only.
pub(crate) fn is_site_path(p: &str) -> bool {
    p.starts_with('/')
        && !p.starts_with("//")
        && !p.starts_with("/\\")
        && p.len() <= 512
        && p.bytes().all(|b| b.is_ascii_graphic())
}

/// `#rgb` or `#rrggbb` as `#rrggbb`, with at least 4.5:1 contrast against `against`.
fn colour(v: &str, name: &str, against: [u8; 3], key: &str) -> Result<String, ConfigError> {
    let bad = |m: String| ConfigError::invalid(format!("{key}.{name}"), m);
    let rgb = parse_hex(v).ok_or_else(|| bad(format!("`{v}`: a colour as #rgb or #rrggbb")))?;
    let ratio = contrast(rgb, against);
    if ratio < 4.5 {
        return Err(bad(format!(
            "`{v}` is too close to the colour it sits on or carries ({ratio:.1}:1; \
             readable text needs 4.5:1)"
        )));
    }
    Ok(format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2]))
}

fn parse_hex(v: &str) -> Option<[u8; 3]> {
    let hex = v.strip_prefix('#')?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let digit = |s: &str| u8::from_str_radix(s, 16).ok();
    match hex.len() {
        3 => {
            let mut out = [0u8; 3];
            for (i, c) in hex.chars().enumerate() {
                out[i] = digit(&c.to_string())? * 17;
            }
            Some(out)
        }
        6 => Some([digit(&hex[0..2])?, digit(&hex[2..4])?, digit(&hex[4..6])?]),
        _ => None,
    }
}

/// WCAG 2 relative luminance.
fn luminance(rgb: [u8; 3]) -> f64 {
    let lin = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.03928 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(rgb[0]) + 0.7152 * lin(rgb[1]) + 0.0722 * lin(rgb[2])
}

/// WCAG 2 contrast ratio of two colours.
pub(crate) fn contrast(a: [u8; 3], b: [u8; 3]) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// Text on `accent` (`#rrggbb`): white or near-black, whichever reads better.
pub fn text_on(accent: &str) -> &'static str {
    let rgb = parse_hex(accent).unwrap_or([0, 0, 0]);
    if contrast(rgb, [0xff; 3]) >= contrast(rgb, [0x1b, 0x1f, 0x24]) {
        "#ffffff"
    } else {
        "#1b1f24"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(raw: RawAppPages) -> Result<AppPages, ConfigError> {
        validate_app("apps.web.pages", Some(raw))
    }

    #[test]
    fn colours_must_be_hex_and_readable() {
        let ok = app(RawAppPages {
            accent_color: Some("#1F5FBF".into()),
            background_color: Some("#fff".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(ok.accent_color.as_deref(), Some("#1f5fbf"));
        assert_eq!(ok.background_color.as_deref(), Some("#ffffff"));
        for (accent, bg) in [
            (Some("red; } body { display: none"), None),
            (Some("#ffff00"), None),
            (Some("#12345"), None),
            (None, Some("#333333")),
        ] {
            let r = app(RawAppPages {
                accent_color: accent.map(Into::into),
                background_color: bg.map(Into::into),
                ..Default::default()
            });
            assert!(r.is_err(), "{accent:?} {bg:?}");
        }
        assert_eq!(text_on("#1f5fbf"), "#ffffff");
    }

    #[test]
    fn a_logo_is_a_site_path_and_the_language_one_idgate_speaks() {
        for logo in [
            "https://cdn.example/logo.svg",
            "//cdn.example/x",
            "/\\x",
            "/a b",
        ] {
            let r = app(RawAppPages {
                logo_url: Some(logo.into()),
                ..Default::default()
            });
            assert!(r.is_err(), "{logo}");
        }
        let ok = app(RawAppPages {
            logo_url: Some("/assets/logo.svg".into()),
            language: Some("it".into()),
            title: Some("Negozio".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(ok.language, Lang::It);
        for l in ["de", "IT", "it-IT"] {
            let r = app(RawAppPages {
                language: Some(l.into()),
                ..Default::default()
            });
            assert!(r.is_err(), "{l}");
        }
        assert!(app(RawAppPages {
            title: Some("a\nb".into()),
            ..Default::default()
        })
        .is_err());
    }
}
