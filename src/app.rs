//! Process-level wiring for the `run` command: logging, signals, the status server and
//! the controller loop. Kept out of main.rs so tests can start a whole controller in-process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::actuate::{Actuator, DryRunSink, SET_TIMEOUT};
use crate::config::Config;
use crate::controller::{self, RunOptions};
use crate::gnmi::channels::Channels;
use crate::gnmi::connect::ConnectOptions;
use crate::gnmi::set::Setter;
use crate::status::{self, Board};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// How log lines reach stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogWrites {
    /// Formatted where they are logged, written by a thread of their own (`logwriter`):
    /// the caller never waits on stderr. For the long-running controllers.
    Thread,
    /// Written where they are logged, in order with the caller's own output. For the demo,
    /// whose narration on stdout the warnings must interleave with as they happen.
    Direct,
}

/// Log to stderr (stdout belongs to dry-run lines and the demo's narration). `RUST_LOG`
/// overrides `default_level`; colour only when stderr is a terminal. With
/// `LogWrites::Thread`, hold the guard until exit: dropping it writes out the queue.
pub fn init_logging(format: LogFormat, default_level: &str, writes: LogWrites) -> Option<crate::logwriter::LogThread> {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let (queue, thread) = match writes {
        LogWrites::Direct => (crate::logwriter::LogQueue::stderr(), None),
        LogWrites::Thread => match crate::logwriter::spawn(std::io::stderr()) {
            Ok((queue, thread)) => (queue, Some(thread)),
            Err(e) => {
                eprintln!("warning: no log thread ({e}); logging straight to stderr");
                (crate::logwriter::LogQueue::stderr(), None)
            }
        },
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(queue).with_ansi(ansi);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.fmt_fields(JsonFields::new()).event_format(FlatJson).try_init(),
    };
    thread
}

/// `--log-format json`: one JSON object per line with every field at the top level: the
/// event's own and those of the spans it is in (`group`, `target`), so a collector can
/// index `group="leaf1-es1"` without knowing which span carried it. `target` is therefore
/// the gNMI target, and the Rust module that logged is `module`.
struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert("timestamp".into(), Value::from(crate::status::rfc3339(std::time::SystemTime::now())));
        line.insert("level".into(), Value::from(meta.level().as_str()));
        line.insert("module".into(), Value::from(meta.target()));
        // Outer spans first, so an inner span's field (or the event's) wins a name clash.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                // JsonFields stores each span's fields as a JSON object.
                if let Some(fields) = ext.get::<FormattedFields<N>>()
                    && let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&fields.fields)
                {
                    line.extend(fields);
                }
            }
        }
        event.record(&mut JsonVisitor(&mut line));
        writeln!(writer, "{}", Value::Object(line))
    }
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl tracing::field::Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().into(), Value::from(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_error(&mut self, field: &tracing::field::Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), Value::from(value.to_string()));
    }
}

pub struct AppOptions {
    pub dry_run: bool,
    /// Overrides the config's `http:`; the default is 127.0.0.1:9610.
    pub http: Option<SocketAddr>,
}

/// `opergroupd run`: until SIGTERM or SIGINT.
pub async fn run(config: Config, app: AppOptions) -> Result<(), String> {
    let cancel = CancellationToken::new();
    spawn_signal_handler(cancel.clone());
    for w in &config.warnings {
        tracing::warn!("{w}");
    }

    let board = Board::from_config(&config, env!("CARGO_PKG_VERSION"), app.dry_run);
    let http = match app.http.or(config.http) {
        Some(addr) => addr,
        None => status::DEFAULT_LISTEN.parse().map_err(|e| format!("{e}"))?,
    };
    let (bound, server) =
        status::serve(http, board.clone(), cancel.clone()).map_err(|e| format!("status server on {http}: {e}"))?;
    info!(%bound, "status: /status /metrics /healthz /readyz");

    // One HTTP/2 connection per target: Sets go on the channel its subscription opened.
    let channels = Channels::default();
    let actuator = if app.dry_run {
        Actuator::DryRun(DryRunSink::Stdout)
    } else {
        Actuator::Gnmi(Arc::new(Setter::sharing(ConnectOptions::default(), SET_TIMEOUT, channels.clone())))
    };
    let mut opts = RunOptions::new(actuator);
    opts.source.channels = Some(channels);
    opts.board = Some(board);
    let mut elector_task = None;
    // The Lease outlives the loop: on shutdown the loop stops acting and drains (or
    // abandons) its Sets first; only then is the Lease released, so the next leader never
    // acts while a Set of this replica can still be on the wire.
    let lease_cancel = CancellationToken::new();
    if let Some(le) = &config.leader_election {
        // Everything below runs on every replica (subscribe, evaluate, report): a takeover
        // is then a matter of the next Set, not of a cold start.
        let (elector, task) = crate::leader::start(le, crate::leader::ClientSource::Infer, lease_cancel.clone())
            .await
            .map_err(|e| format!("leader-election: {e}"))?;
        info!(lease = %le.lease, namespace = %le.namespace, "leader election: Sets only while holding the Lease");
        opts.leader = Some(elector);
        elector_task = Some(task);
    }
    info!(targets = config.targets.len(), groups = config.groups.len(), dry_run = app.dry_run, "starting");
    let result = controller::run(config, opts, cancel.clone()).await;
    cancel.cancel();
    lease_cancel.cancel();
    if let Some(task) = elector_task {
        // Releasing the Lease lets the standby take over without waiting for expiry.
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), server).await;
    result.map_err(|e| {
        error!(error = %e, "controller stopped");
        e.to_string()
    })
}

fn spawn_signal_handler(cancel: CancellationToken) {
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => info!("SIGINT: shutting down"),
            _ = term => info!("SIGTERM: shutting down"),
        }
        cancel.cancel();
    });
}
