//! `[telemetry]`: OpenTelemetry traces (see `telemetry`), off unless `otlp_endpoint` is set.

use super::raw::RawTelemetry;
use super::ConfigError;

/// The service name traces carry by default.
const DEFAULT_SERVICE_NAME: &str = "idgate";
/// The longest service name accepted.
const MAX_SERVICE_NAME: usize = 128;

/// The validated `[telemetry]`: `None` in [`super::Config`] when traces are off.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// The OTLP/HTTP collector's base URL (`http://collector:4318`); spans go to `/v1/traces` under it.
    pub otlp_endpoint: url::Url,
    /// `service.name` of the exported spans.
    pub service_name: String,
    /// The share of new traces recorded (0.0 to 1.0); a trace continued from a `traceparent`
    /// follows its parent's sampled flag.
    pub sample_ratio: f64,
}

pub(super) fn validate(raw: Option<RawTelemetry>) -> Result<Option<TelemetryConfig>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let Some(endpoint) = raw.otlp_endpoint else {
        return Ok(None);
    };
    let otlp_endpoint = url::Url::parse(&endpoint)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            ConfigError::invalid(
                "telemetry.otlp_endpoint",
                "must be an http:// or https:// URL such as http://collector:4318",
            )
        })?;
    let service_name = raw
        .service_name
        .unwrap_or_else(|| DEFAULT_SERVICE_NAME.into());
    if service_name.is_empty()
        || service_name.len() > MAX_SERVICE_NAME
        || service_name.chars().any(char::is_control)
    {
        return Err(ConfigError::invalid(
            "telemetry.service_name",
            format!("must be 1 to {MAX_SERVICE_NAME} printable characters"),
        ));
    }
    let sample_ratio = raw.sample_ratio.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&sample_ratio) {
        return Err(ConfigError::invalid(
            "telemetry.sample_ratio",
            "must be from 0.0 to 1.0",
        ));
    }
    Ok(Some(TelemetryConfig {
        otlp_endpoint,
        service_name,
        sample_ratio,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(endpoint: Option<&str>) -> RawTelemetry {
        RawTelemetry {
            otlp_endpoint: endpoint.map(str::to_owned),
            service_name: None,
            sample_ratio: None,
        }
    }

    #[test]
    fn off_without_an_endpoint_and_defaults_with_one() {
        assert_eq!(validate(None).unwrap(), None);
        assert_eq!(validate(Some(raw(None))).unwrap(), None);
        let on = validate(Some(raw(Some("http://127.0.0.1:4318"))))
            .unwrap()
            .unwrap();
        assert_eq!(on.service_name, "idgate");
        assert_eq!(on.sample_ratio, 1.0);
    }

    #[test]
    fn refuses_bad_values() {
        for bad in ["", "collector:4318", "ftp://c", "http://"] {
            assert!(validate(Some(raw(Some(bad)))).is_err(), "{bad}");
        }
        let mut r = raw(Some("http://c:4318"));
        r.sample_ratio = Some(1.5);
        assert!(validate(Some(r)).is_err());
        let mut r = raw(Some("http://c:4318"));
        r.service_name = Some(String::new());
        assert!(validate(Some(r)).is_err());
    }
}
