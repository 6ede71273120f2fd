//! The daemon's commands: `serve` (the runtime, the listeners — its own or systemd's — SIGHUP
//! reloads, systemd's notifications and watchdog) and `check-config` (everything `serve` would load, then exit), and the logging
//! both set up.

use std::path::Path;
use std::sync::Arc;

use tracing_subscriber::fmt::writer::BoxMakeWriter;

use super::{block_on, Failure};
use crate::config::Config;
use crate::state::AppState;

/// Sets up logging from the config (`RUST_LOG` wins), written to stderr as it comes: the
/// commands' logging (the daemon's is [`stderr_off_the_requests`]).
pub fn init_tracing(config: Option<&Config>) {
    install_tracing(config, None, BoxMakeWriter::new(std::io::stderr));
}

/// Log lines the daemon queues for stderr; beyond them, new lines are dropped and counted
/// (`idgate_log_dropped_total`). About 3 MB of lines at their usual length.
const LOG_QUEUE_LINES: usize = 16_384;

/// The daemon's log writer: lines go to stderr from a thread of their own, through a queue of
/// [`LOG_QUEUE_LINES`]. A request never waits for stderr: written in place, a journald (or a
/// pipe) that stopped reading would hold every worker that logs, and the requests queued on
/// them, a cached `/auth` among them, until it read again. When the queue is full, lines are
/// dropped and counted instead. The guard writes out what is queued when the daemon ends.
fn stderr_off_the_requests() -> (BoxMakeWriter, tracing_appender::non_blocking::WorkerGuard) {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .thread_name("idgate-log")
        .finish(std::io::stderr());
    crate::metrics::follow_log_drops(writer.error_counter());
    (BoxMakeWriter::new(writer), guard)
}

/// The OpenTelemetry layer over the plain registry, taking the trace spans only.
type OtelLayer = tracing_subscriber::filter::Filtered<
    crate::telemetry::Layer<tracing_subscriber::Registry>,
    tracing_subscriber::filter::Targets,
    tracing_subscriber::Registry,
>;

/// Installs the log layer (the config's level and format; `RUST_LOG` wins) and, when traces are
/// on, the OpenTelemetry layer. Each sees only its own: the log layer never the trace spans
/// (`telemetry::TARGET`), the OpenTelemetry layer nothing else.
fn install_tracing(config: Option<&Config>, otel: Option<OtelLayer>, writer: BoxMakeWriter) {
    use tracing_subscriber::util::SubscriberInitExt;
    let level = config
        .map(|c| c.log.level.clone())
        .unwrap_or_else(|| "info".into());
    let level = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let json = config.is_some_and(|c| c.log.json);
    let _ = subscriber(level, json, otel, writer).try_init();
}

/// The subscriber [`install_tracing`] installs, as a dispatcher: the log layer at `level`, as
/// JSON lines when `json`, and the OpenTelemetry layer when there is one.
///
/// Only what some layer records is "enabled", so the hot path's `tracing::enabled!(DEBUG)`
/// guards skip their work (the debug line's request id, path and rule explanation) at the
/// default `info`. Two shapes break that, which is why this one is built as it is: the log
/// layer's two filters (the level, and no trace spans) nested as two per-layer filters, where
/// the outer one (every level through) decides alone; and an absent OpenTelemetry layer added
/// as `None`, which counts as a layer that wants everything.
fn subscriber(
    level: tracing_subscriber::EnvFilter,
    json: bool,
    otel: Option<OtelLayer>,
    writer: BoxMakeWriter,
) -> tracing::Dispatch {
    use tracing_subscriber::layer::SubscriberExt;
    match otel {
        Some(otel) => {
            let traced = tracing_subscriber::registry().with(otel);
            tracing::Dispatch::new(traced.with(log_layer(level, json, writer)))
        }
        None => tracing::Dispatch::new(
            tracing_subscriber::registry().with(log_layer(level, json, writer)),
        ),
    }
}

/// The log layer: lines to `writer` (stderr) at `level` (JSON when `json`), never the trace spans.
fn log_layer<S>(
    level: tracing_subscriber::EnvFilter,
    json: bool,
    writer: BoxMakeWriter,
) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use tracing_subscriber::filter::{FilterExt, LevelFilter, Targets};
    use tracing_subscriber::Layer;
    let no_trace_spans = Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_target(crate::telemetry::TARGET, LevelFilter::OFF);
    let filter = level.and(no_trace_spans);
    // Colours only on a terminal: journald and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    if json {
        fmt.json().with_filter(filter).boxed()
    } else {
        fmt.with_filter(filter).boxed()
    }
}

/// Starts the trace exporter when `[telemetry]` asks for it, with its layer (trace spans only).
fn start_telemetry(
    config: &Config,
) -> Result<(Option<crate::telemetry::Telemetry>, Option<OtelLayer>), Failure> {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::Layer;
    let Some(settings) = &config.telemetry else {
        return Ok((None, None));
    };
    let (telemetry, layer) =
        crate::telemetry::Telemetry::start(settings).map_err(Failure::Runtime)?;
    let only_trace_spans = Targets::new().with_target(crate::telemetry::TARGET, LevelFilter::INFO);
    Ok((Some(telemetry), Some(layer.with_filter(only_trace_spans))))
}

/// `idgate serve`: the daemon, until SIGTERM or SIGINT; SIGHUP reloads the config.
pub fn serve(path: &Path) -> Result<(), Failure> {
    let config = Config::load(path)?;
    // Before the runtime: the exporter's blocking HTTP client must be built outside it.
    let (telemetry, otel) = start_telemetry(&config)?;
    // Held to the end: dropping it writes out the lines still queued.
    let (log_writer, _log_guard) = stderr_off_the_requests();
    install_tracing(Some(&config), otel, log_writer);
    if let Some(t) = &config.telemetry {
        tracing::info!(endpoint = %t.otlp_endpoint, "exporting traces (OTLP/HTTP)");
    }
    config.notices.log();
    // Before the runtime's threads: taking systemd's sockets clears LISTEN_FDS.
    let inherited = crate::server::inherited().map_err(|e| Failure::Runtime(e.into()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(e.into()))?;
    let served = runtime.block_on(async move {
        let listeners = if inherited.is_empty() {
            crate::server::bind_with(&config.server.listen, &config.server.socket)
                .await
                .map_err(anyhow::Error::from)?
        } else {
            tracing::info!(
                sockets = inherited.len(),
                "serving the sockets systemd passed (socket activation); [server] listen is not used"
            );
            inherited
                .into_iter()
                .map(crate::server::Inherited::into_listener)
                .collect::<std::io::Result<Vec<_>>>()
                .map_err(anyhow::Error::from)?
        };
        let state = AppState::build(config).await?;
        let background = state.spawn_background();
        let shared: crate::server::SharedState = Arc::new(arc_swap::ArcSwap::new(state));
        // The signal handlers are in place before systemd hears READY=1 and before the first
        // connection is accepted: `systemctl stop` or `reload` may follow at once, and until a
        // handler is registered, SIGTERM and SIGHUP end the process.
        tokio::spawn(crate::reload::on_sighup(
            path.to_owned(),
            shared.clone(),
            background,
        ));
        let shutdown = crate::signal::shutdown();
        crate::systemd::ready();
        let _watchdog = crate::systemd::spawn_watchdog();
        let stop = async {
            let how = shutdown.await;
            crate::systemd::stopping();
            how
        };
        crate::server::run_shared(listeners, shared, stop).await;
        Ok(())
    });
    // After the drain: the spans of the last requests are sent before the process ends.
    if let Some(telemetry) = telemetry {
        telemetry.shutdown();
    }
    served
}

/// `idgate check-config`: loads the config and builds the state from it, as `serve` would (files,
/// keys, stores), prints its notes and warnings, and says `ok`.
pub fn check_config(path: &Path) -> Result<(), Failure> {
    let c = Config::load(path)?;
    for line in &c.notices.infos {
        eprintln!("note: {line}");
    }
    for line in &c.notices.warnings {
        eprintln!("warning: {line}");
    }
    block_on(async move {
        AppState::build(c)
            .await
            .map(|_| ())
            .map_err(Failure::Runtime)
    })?;
    println!("{}: ok", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether INFO, DEBUG, the trace spans' target and `idgate::routes` at DEBUG are on.
    fn enabled_at(level: &str, json: bool) -> [bool; 4] {
        let dispatch = subscriber(
            tracing_subscriber::EnvFilter::new(level),
            json,
            None,
            BoxMakeWriter::new(std::io::sink),
        );
        tracing::dispatcher::with_default(&dispatch, || {
            [
                tracing::enabled!(tracing::Level::INFO),
                tracing::enabled!(tracing::Level::DEBUG),
                tracing::enabled!(target: "idgate::trace", tracing::Level::INFO),
                tracing::enabled!(target: "idgate::routes::auth", tracing::Level::DEBUG),
            ]
        })
    }

    /// A level below the configured one is off, so the hot path's `enabled!(DEBUG)` guards skip
    /// their work; the trace spans' target never reaches the log at any level.
    #[test]
    fn a_level_below_the_configured_one_is_off_and_trace_spans_never_log() {
        for json in [false, true] {
            let at = |level| enabled_at(level, json);
            assert_eq!(at("info"), [true, false, false, false], "json {json}");
            assert_eq!(at("debug"), [true, true, false, true], "json {json}");
            assert_eq!(at("warn"), [false, false, false, false], "json {json}");
            let routes = at("info,idgate::routes=debug");
            assert_eq!(routes, [true, false, false, true], "json {json}");
        }
    }
}
