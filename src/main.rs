//! CLI. Minimal on this branch: only `opergroupd exabgp --config FILE` (the lead merges
//! it into the full CLI of the contract).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "opergroupd", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run as an ExaBGP `process`: probe the configured services and announce/withdraw
    /// their prefixes over ExaBGP's text API (stdout), reading ACKs on stdin.
    Exabgp {
        #[arg(long)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Exabgp { config } => opergroupd::exabgp::main_exabgp(&config),
    }
}
