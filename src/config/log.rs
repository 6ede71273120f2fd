//! `[log]`: the output format and the level filter. `RUST_LOG`, when set, wins over the level
//! (`main` decides that); this only checks what the file says.

use super::raw::RawLog;
use super::ConfigError;

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub json: bool,
    pub level: String,
}

/// The `[log]` section: `plain` (the default) or `json`, and the filter (default `info`).
pub(super) fn validate(raw: RawLog) -> Result<LogConfig, ConfigError> {
    let json = match raw.format.as_deref().unwrap_or("plain") {
        "plain" => false,
        "json" => true,
        other => {
            return Err(ConfigError::invalid(
                "log.format",
                format!("`{other}` is not one of plain, json"),
            ))
        }
    };
    Ok(LogConfig {
        json,
        level: raw.level.unwrap_or_else(|| "info".into()),
    })
}
