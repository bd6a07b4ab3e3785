//! netns-agent: run inside a leaf's network namespace (`ip netns exec leaf1 netns-agent ...`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use futures::StreamExt;
use netns_agent::{frr, links, server, store::Store};
use tokio_stream::wrappers::TcpListenerStream;

#[derive(Parser)]
#[command(about = "gNMI agent for a Linux + FRR leaf (SR Linux paths)")]
struct Args {
    /// Address to serve gNMI on (inside the namespace).
    #[arg(long, default_value = "0.0.0.0:57400")]
    listen: SocketAddr,
    /// Username and password the client must send as metadata; none: no authentication.
    #[arg(long, requires = "password")]
    username: Option<String>,
    #[arg(long, requires = "username")]
    password: Option<String>,
    /// PEM certificate and key for TLS; without them the agent serves plaintext (h2c).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// FRR's vty socket directory (vtysh --vty_socket).
    #[arg(long)]
    vty_socket: Option<PathBuf>,
    /// How often BGP state is read from FRR.
    #[arg(long, default_value = "250", value_name = "MS")]
    bgp_poll_ms: u64,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    if let Err(e) = run(Args::parse()).await {
        eprintln!("netns-agent: {e}");
        std::process::exit(2);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let store = Store::new();
    links::spawn_watcher(store.clone());
    tokio::spawn(frr::poll(store.clone(), args.vty_socket.clone(), Duration::from_millis(args.bgp_poll_ms.max(10))));
    let credentials = args.username.zip(args.password);
    let mut builder = tonic::transport::Server::builder();
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let read = |p: &PathBuf| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
        let identity = tonic::transport::Identity::from_pem(read(cert)?, read(key)?);
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .map_err(|e| format!("TLS: {e}"))?;
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let incoming = TcpListenerStream::new(listener).map(|c| {
        c.inspect(|s| {
            let _ = s.set_nodelay(true);
        })
    });
    tracing::info!(listen = %args.listen, "serving gNMI");
    println!("{{\"ready\":true,\"listen\":\"{}\"}}", args.listen);
    let svc = gnmi_proto::g_nmi_server::GNmiServer::new(server::Leaf { store, credentials });
    let stop = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { if let Some(t) = term.as_mut() { t.recv().await; } else { std::future::pending::<()>().await } } => {}
        }
    };
    builder.add_service(svc).serve_with_incoming_shutdown(incoming, stop).await.map_err(|e| e.to_string())
}
