//! TODO(lead): replace with calls into the controller, demo and status modules.
//! Kept so the `pure` branch compiles; each function is the single call `main` makes.

use std::net::SocketAddr;

use opergroupd::config::Config;

use crate::LogFormat;

pub struct RunOptions {
    pub dry_run: bool,
    pub log_format: LogFormat,
    pub http: Option<SocketAddr>,
}

/// `run`: e.g. `opergroupd::controller::run(config, options)`.
pub fn run(_config: Config, options: RunOptions) -> Result<(), String> {
    let _ = (options.dry_run, options.log_format, options.http);
    Err("run: not wired yet".into())
}

/// `demo`: the embedded reference fabric and the narrated scenarios.
pub fn demo() -> Result<(), String> {
    Err("demo: not wired yet".into())
}

/// `status`: read `http://ADDR/status` and print it.
pub fn status(_http: &str, _json: bool) -> Result<(), String> {
    Err("status: not wired yet".into())
}
