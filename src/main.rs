//! The command line (contract section 1). Parsing and exit codes only: the work lives in
//! the library. Exit codes: 0 ok; 1 bad config or bad arguments; 2 runtime failure.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "opergroupd", version, about = "Off-box oper-group controller for EVPN leaf/spine fabrics over gNMI")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Subscribe to the targets, decide per group and enforce with gNMI Set.
    Run {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Print the intended Sets as JSON lines on stdout instead of sending them.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// Where /status, /metrics, /healthz and /readyz listen (overrides `http:`).
        #[arg(long, value_name = "ADDR")]
        http: Option<SocketAddr>,
    },
    /// Validate a config and print the resolved plan.
    Check {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Also connect to every target, wait for its initial dump and report interfaces and
        /// BGP neighbors it does not have, and targets it cannot reach (never Sets). Exit 1
        /// if any.
        #[arg(long)]
        online: bool,
    },
    /// Run the reference fabric in-process with the controller, and narrate the scenarios.
    Demo,
    /// Run as an ExaBGP `process`: probe the configured services and announce or withdraw
    /// their prefixes over ExaBGP's text API (stdout), reading ACKs on stdin.
    Exabgp {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Print a running controller's /status for people.
    Status {
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9610")]
        http: String,
        /// Print the raw JSON instead.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

const EXIT_BAD_INPUT: u8 = 1;
const EXIT_RUNTIME: u8 = 2;
/// `check --online`: per target, from connect to the end of the initial dump.
const ONLINE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors.
            let code = if e.use_stderr() { EXIT_BAD_INPUT } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Check { config, online } => match opergroupd::config::load(&config) {
            Ok(c) => {
                println!("{}: ok", config.display());
                for w in &c.warnings {
                    eprintln!("warning: {w}");
                }
                print!("{}", opergroupd::check::render(&c));
                if !online {
                    return ExitCode::SUCCESS;
                }
                let rt = match tokio::runtime::Runtime::new() {
                    Ok(rt) => rt,
                    Err(e) => {
                        eprintln!("error: cannot start the async runtime: {e}");
                        return ExitCode::from(EXIT_RUNTIME);
                    }
                };
                let report = rt.block_on(opergroupd::check::online::check(&c, ONLINE_TIMEOUT));
                rt.shutdown_timeout(std::time::Duration::from_millis(500));
                print!("{}", report.render(&c));
                if report.ok() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_BAD_INPUT) }
            }
            Err(e) => bad_config(&e),
        },
        Command::Run { config, dry_run, log_format, http } => {
            let c = match opergroupd::config::load(&config) {
                Ok(c) => c,
                Err(e) => return bad_config(&e),
            };
            let _logs = opergroupd::app::init_logging(
                match log_format {
                    LogFormat::Text => opergroupd::app::LogFormat::Text,
                    LogFormat::Json => opergroupd::app::LogFormat::Json,
                },
                "info",
                opergroupd::app::LogWrites::Thread,
            );
            raise_fd_limit(c.targets.len());
            runtime(Threads::One, || opergroupd::app::run(c, opergroupd::app::AppOptions { dry_run, http }))
        }
        Command::Demo => {
            // The narration is the output; logs only for trouble.
            let _logs = opergroupd::app::init_logging(
                opergroupd::app::LogFormat::Text,
                "warn",
                opergroupd::app::LogWrites::Direct,
            );
            runtime(Threads::PerCore, opergroupd::demo::run)
        }
        Command::Status { http, json } => runtime(Threads::PerCore, || async move {
            opergroupd::status::print_status(&http, json).await.map_err(|e| e.to_string())
        }),
        Command::Exabgp { config } => {
            let c = match opergroupd::config::load(&config) {
                Ok(c) => c,
                Err(e) => return bad_config(&e),
            };
            if c.services.is_empty() {
                eprintln!(
                    "error: {}: no services configured (`opergroupd exabgp` needs `services:`)",
                    config.display()
                );
                return ExitCode::from(EXIT_BAD_INPUT);
            }
            // stdout is ExaBGP's command channel: logs go to stderr only.
            let _logs = opergroupd::app::init_logging(
                opergroupd::app::LogFormat::Text,
                "info",
                opergroupd::app::LogWrites::Thread,
            );
            runtime(Threads::PerCore, || opergroupd::anycast::run(c))
        }
    }
}

/// Each target holds one or two TCP connections, plus the HTTP server's and the files:
/// 10,000 targets need more than 20,000 descriptors, over the usual soft limit of 1024.
fn raise_fd_limit(targets: usize) {
    let want = 2 * targets as u64 + 1024;
    match opergroupd::fdlimit::raise(want) {
        Ok(limit) if limit >= want => {}
        Ok(limit) => tracing::warn!(limit, want, targets, "open-file limit below what this many targets need"),
        Err(e) => tracing::warn!(want, targets, "cannot raise the open-file limit: {e}"),
    }
}

fn bad_config(e: &opergroupd::config::ConfigError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(EXIT_BAD_INPUT)
}

/// The threads an entry point's runtime has.
enum Threads {
    /// `run`: the control loop and every target's session on one thread (the status
    /// server has its own). Their work is a chain of short steps handing events to each
    /// other; on two worker threads each hand-off could be a futex wake and a context
    /// switch, and the storm at 10,000 leaves cost 28 % more CPU than on one
    /// (BENCHMARKS.md, round five).
    One,
    /// Everything else: the runtime's default, a worker per core.
    PerCore,
}

/// Run one async entry point; its error exits 2.
fn runtime<F, Fut>(threads: Threads, entry: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let rt = match threads {
        Threads::One => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        Threads::PerCore => tokio::runtime::Runtime::new(),
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    // On a multi-threaded runtime the entry runs as a task on the worker threads, not on
    // this thread inside block_on: there, every event a source task sent to the control
    // loop woke a third thread (13 % of the storm's CPU in perf).
    let result = match rt.block_on(async { tokio::spawn(entry()).await }) {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(format!("the main task was cancelled: {e}")),
    };
    // Background tasks (streams being torn down) must not hold the exit past SIGTERM's 5 s.
    rt.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}
