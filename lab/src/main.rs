//! fabric-sim: serves the simulated reference fabric until SIGINT/SIGTERM.
//! stdout carries one `{"ready":true,...}` line; logs go to stderr.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Instant;

use clap::{ArgGroup, Parser, ValueEnum};
use fabric_sim::{SimConfig, SimTls, Timings};

#[derive(Parser)]
#[command(version, about = "gNMI simulator of the SR Linux EVPN reference fabric")]
#[command(group(ArgGroup::new("transport").args(["insecure", "self_signed"])))]
struct Args {
    /// Number of leaves (leaf1..leafN), each with ethernet-1/1, 1/49 -> spine1, 1/50 -> spine2.
    #[arg(long, default_value_t = 4)]
    leaves: usize,
    /// Address every leaf listens on.
    #[arg(long, default_value = "127.0.0.1")]
    listen: IpAddr,
    /// leafK serves gNMI on base-port + K; 0 gives every leaf an ephemeral port.
    #[arg(long, default_value_t = 57400)]
    base_port: u16,
    /// HTTP/JSON control API address.
    #[arg(long, default_value = "127.0.0.1:58000")]
    control: SocketAddr,
    /// Serve no control API.
    #[arg(long, conflicts_with = "control")]
    no_control: bool,
    /// Plaintext HTTP/2 (the default).
    #[arg(long)]
    insecure: bool,
    /// TLS with a certificate generated at start (see --ca-file, GET /v1/ca).
    #[arg(long)]
    self_signed: bool,
    /// Write the self-signed certificate (PEM) here.
    #[arg(long, requires = "self_signed")]
    ca_file: Option<std::path::PathBuf>,
    #[arg(long, default_value = "admin")]
    username: String,
    #[arg(long, default_value = "NokiaSrl1!")]
    password: String,
    /// BGP model delays: realistic (hold 9 s) or fast (tens of ms).
    #[arg(long, value_enum, default_value_t = TimingsArg::Realistic)]
    timings: TimingsArg,
    /// EVPN routes each iBGP neighbor gives once established.
    #[arg(long, default_value_t = 10)]
    evpn_routes: u32,
    /// Vendor models per leaf: `srl` (SR Linux native), `openconfig` (EOS-style OpenConfig,
    /// Ethernet1 / Ethernet49/1 / Ethernet50/1), or a mix: `leaf1=srl,leaf2=openconfig`,
    /// `openconfig,leaf1=srl` (a bare word is every other leaf's profile).
    #[arg(long, default_value = "srl", value_parser = fabric_sim::Profiles::parse)]
    profile: fabric_sim::Profiles,
}

#[derive(Clone, Copy, ValueEnum)]
enum TimingsArg {
    Realistic,
    Fast,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let started = Instant::now();
    let cfg = SimConfig {
        leaves: args.leaves,
        listen: args.listen,
        base_port: args.base_port,
        control: (!args.no_control).then_some(args.control),
        tls: if args.self_signed { SimTls::SelfSigned } else { SimTls::Insecure },
        username: args.username,
        password: args.password,
        timings: match args.timings {
            TimingsArg::Realistic => Timings::realistic(),
            TimingsArg::Fast => Timings::fast(),
        },
        evpn_routes: args.evpn_routes,
        profiles: args.profile.clone(),
    };
    let fabric = match fabric_sim::start(cfg).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fabric-sim: {e}");
            return ExitCode::from(1);
        }
    };
    if let (Some(path), Some(pem)) = (&args.ca_file, fabric.ca_pem())
        && let Err(e) = std::fs::write(path, pem)
    {
        eprintln!("fabric-sim: cannot write --ca-file {}: {e}", path.display());
        fabric.shutdown().await;
        return ExitCode::from(1);
    }
    let ports: serde_json::Map<String, serde_json::Value> =
        fabric.leaf_names().into_iter().filter_map(|n| fabric.leaf_addr(&n).map(|a| (n, a.port().into()))).collect();
    let ready = serde_json::json!({
        "ready": true,
        "listen": args.listen.to_string(),
        "leaves": ports,
        "control": fabric.control_addr().map(|a| a.to_string()),
        "tls": if args.self_signed { "self-signed" } else { "insecure" },
        "profiles": fabric.leaf_names().into_iter().map(|n| (args.profile.of(&n).as_str().to_string(), n)).map(|(p, n)| (n, serde_json::Value::from(p))).collect::<serde_json::Map<_, _>>(),
        "start_ms": started.elapsed().as_millis() as u64,
    });
    println!("{ready}");
    tracing::info!(leaves = args.leaves, "fabric-sim ready");

    wait_for_signal().await;
    tracing::info!("shutting down");
    fabric.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; only SIGINT stops fabric-sim");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
