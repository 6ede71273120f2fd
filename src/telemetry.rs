//! OpenTelemetry traces (`[telemetry]`, off unless `otlp_endpoint` is set): spans for the login
//! steps, the IdP calls, the store calls and renewals, exported by OTLP/HTTP (protobuf) to a
//! collector.
//!
//! The spans are ordinary `tracing` spans with the target [`TARGET`]: the OpenTelemetry layer
//! takes those and nothing else, and the log layer never sees them, so the log lines stay as
//! they were. With telemetry off no layer wants them: each such span is disabled at its
//! call site (a cached "never"), and the code paths cost what they cost before. `/auth` on a
//! cached session opens no span at all.
//!
//! A W3C `traceparent` on a login step's request is continued ([`continue_trace`]); the IdP
//! and the CRUD users service get the current span's as theirs ([`propagate`], [`inject`],
//! [`Traced`]). Sampling is parent based: a continued trace keeps its caller's sampled flag,
//! a new one is recorded with the probability `sample_ratio`.
//!
//! Export never holds a request up: finished spans go to a bounded queue (dropped when it is
//! full) that the batch processor's own thread sends on; a collector that is down is logged
//! once, and once more when it is back. [`Telemetry::shutdown`] sends what is queued.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter,
};
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::config::TelemetryConfig;

/// The `tracing` target of every span meant for OpenTelemetry.
pub const TARGET: &str = "idgate::trace";

/// Spans waiting for export before new ones are dropped.
const QUEUE: usize = 2048;
/// The longest one export to the collector may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest [`Telemetry::shutdown`] waits for the last export.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether traces are on: set once at start-up, read before any propagation work.
static ON: AtomicBool = AtomicBool::new(false);

/// Whether traces are on (`[telemetry] otlp_endpoint` set and the exporter built).
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// The running exporter; [`Telemetry::shutdown`] flushes it.
pub struct Telemetry {
    /// The SDK's provider: the sampler, the batch processor and its exporter.
    provider: SdkTracerProvider,
}

/// The `tracing` layer that turns [`TARGET`] spans into OpenTelemetry spans.
pub type Layer<S> = tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>;

impl Telemetry {
    /// Builds the exporter and the layer to install; call before the async runtime starts (the
    /// exporter's blocking HTTP client must not be built inside it).
    pub fn start<S>(config: &TelemetryConfig) -> anyhow::Result<(Self, Layer<S>)>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        use opentelemetry_otlp::WithExportConfig;
        let endpoint = config.otlp_endpoint.join("v1/traces")?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(endpoint.as_str())
            .with_timeout(EXPORT_TIMEOUT)
            .build()?;
        let batch = BatchSpanProcessor::builder(LogOnce {
            inner: exporter,
            failing: AtomicBool::new(false),
        })
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(QUEUE)
                .build(),
        )
        .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(batch)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                config.sample_ratio,
            ))))
            .with_resource(
                Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            )
            .build();
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("idgate"))
            .with_tracked_inactivity(false);
        ON.store(true, Ordering::Relaxed);
        Ok((Self { provider }, layer))
    }

    /// Sends the spans still queued and stops the exporter (at SIGTERM, after the drain).
    pub fn shutdown(self) {
        ON.store(false, Ordering::Relaxed);
        if let Err(e) = self.provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
            tracing::warn!(error = %e, "traces: the last export failed");
        }
    }
}

/// The OTLP exporter, logging its first failure and its first success after failures (a
/// collector that is down says so once, not once a batch).
#[derive(Debug)]
struct LogOnce {
    /// The OTLP/HTTP exporter.
    inner: opentelemetry_otlp::SpanExporter,
    /// The last export failed.
    failing: AtomicBool,
}

impl SpanExporter for LogOnce {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let result = self.inner.export(batch).await;
        match &result {
            Err(e) if !self.failing.swap(true, Ordering::Relaxed) => {
                tracing::warn!(error = %e, "traces: the collector refused or could not be reached; spans are dropped until it is back");
            }
            Ok(()) if self.failing.swap(false, Ordering::Relaxed) => {
                tracing::info!("traces: the collector takes spans again");
            }
            _ => {}
        }
        result
    }

    fn shutdown_with_timeout(&mut self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&mut self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Reads `traceparent`/`tracestate` out of request headers.
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes `traceparent`/`tracestate` into request headers.
struct HeadersMut<'a>(&'a mut http::HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Makes `span` continue the trace of the request's `traceparent` (when traces are on and the
/// header is a valid one; otherwise `span` starts a new trace).
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    if !on() || span.is_disabled() {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    let _ = span.set_parent(parent);
}

/// Adds the current span's `traceparent` (and `tracestate`) to outgoing request headers.
pub fn inject(headers: &mut http::HeaderMap) {
    if !on() {
        return;
    }
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut HeadersMut(headers));
}

/// `builder` with the current span's `traceparent`, for a request to an IdP or the CRUD service.
pub fn propagate(builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    if !on() {
        return builder;
    }
    let mut headers = http::HeaderMap::new();
    inject(&mut headers);
    builder.headers(headers)
}

/// The IdP's HTTP client as `openidconnect`'s requests (token, JWKS) take it, passing the
/// current span's `traceparent` on.
pub struct Traced(pub reqwest::Client);

/// What [`Traced`] answers: `reqwest`'s own answer to `openidconnect`.
type TracedFuture<'c> = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = Result<oauth2::HttpResponse, oauth2::HttpClientError<reqwest::Error>>,
            > + Send
            + Sync
            + 'c,
    >,
>;

impl<'c> oauth2::AsyncHttpClient<'c> for Traced {
    type Error = oauth2::HttpClientError<reqwest::Error>;
    type Future = TracedFuture<'c>;

    fn call(&'c self, mut request: oauth2::HttpRequest) -> Self::Future {
        inject(request.headers_mut());
        self.0.call(request)
    }
}

/// The span of a login step's request (`/authorize`, `/oauth/token`, `/web-login/finish`,
/// `/refreshtoken`, `/logout`), continuing the request's trace; a disabled span for any other
/// request, or when traces are off.
pub fn step_span(method: &http::Method, path: &str, headers: &http::HeaderMap) -> tracing::Span {
    let name = match (method.as_str(), path) {
        ("GET", "/authorize") => "GET /authorize",
        ("POST", "/oauth/token") => "POST /oauth/token",
        ("POST", "/web-login/finish") => "POST /web-login/finish",
        ("POST", "/refreshtoken") => "POST /refreshtoken",
        ("GET", "/logout") => "GET /logout",
        ("POST", "/logout") => "POST /logout",
        _ => return tracing::Span::none(),
    };
    let span = tracing::info_span!(
        target: "idgate::trace",
        "login step",
        otel.name = name,
        otel.kind = "server",
        http.route = path
    );
    continue_trace(&span, headers);
    span
}

/// The span of one store operation on a login step (`op`: the store trait's method).
pub fn store_span(op: &'static str) -> tracing::Span {
    tracing::info_span!(
        target: "idgate::trace",
        "store",
        otel.name = op,
        otel.kind = "client"
    )
}
