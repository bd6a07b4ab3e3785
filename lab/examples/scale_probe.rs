//! Starts the fabric-sim binary with N leaves, measures the time to its ready line,
//! calls gNMI Capabilities on every leaf port, then holds one Subscribe per leaf (what a
//! controller does) until every leaf has sent sync_response, and reads the process's memory.
//!
//!     cargo build --release -p fabric-sim --bin fabric-sim --example scale_probe
//!     target/release/examples/scale_probe target/release/fabric-sim 2000
//!
//! SIM_NOFILE=1024 starts the simulator with that soft open-file limit (it must raise it itself).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Instant;

use futures::StreamExt;
use gnmi_proto::g_nmi_client::GNmiClient;

fn proc_status(pid: u32, key: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(key)).map(|l| l[key.len()..].trim().to_string()))
        .unwrap_or_else(|| "?".into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bin = args.next().ok_or("usage: scale_probe FABRIC_SIM_BIN LEAVES")?;
    let leaves: usize = args.next().ok_or("usage: scale_probe FABRIC_SIM_BIN LEAVES")?.parse()?;

    // The probe holds a connection per leaf too.
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain struct in, plain struct out.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    let sim_nofile: Option<libc::rlim_t> = std::env::var("SIM_NOFILE").ok().and_then(|v| v.parse().ok());

    let t0 = Instant::now();
    let mut cmd = Command::new(&bin);
    cmd.args(["--leaves", &leaves.to_string(), "--base-port", "0", "--no-control", "--insecure"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(soft) = sim_nofile {
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let l = libc::rlimit { rlim_cur: soft, rlim_max: lim.rlim_max };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &l) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
    let ready_after = t0.elapsed();
    let ready: serde_json::Value = serde_json::from_str(&line)?;
    let ports: Vec<u16> = ready["leaves"]
        .as_object()
        .ok_or("ready line without leaves")?
        .values()
        .filter_map(|p| p.as_u64().map(|p| p as u16))
        .collect();
    let rss_ready = proc_status(pid, "VmRSS:");

    let t1 = Instant::now();
    let answered = futures::stream::iter(ports.iter().copied())
        .map(|port| async move {
            let ch = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
                .ok()?
                .connect()
                .await
                .ok()?;
            let mut c = GNmiClient::with_interceptor(ch, |mut r: tonic::Request<()>| {
                r.metadata_mut().insert("username", tonic::metadata::MetadataValue::from_static("admin"));
                r.metadata_mut().insert("password", tonic::metadata::MetadataValue::from_static("NokiaSrl1!"));
                Ok(r)
            });
            c.capabilities(gnmi_proto::CapabilityRequest {}).await.ok().map(|_| ())
        })
        .buffer_unordered(64)
        .filter(|r| futures::future::ready(r.is_some()))
        .count()
        .await;
    let probe_time = t1.elapsed();
    let rss_after = proc_status(pid, "VmRSS:");

    let t3 = Instant::now();
    let streams: Vec<_> = futures::stream::iter(ports.iter().copied())
        .map(subscribe_until_sync)
        .buffer_unordered(64)
        .filter_map(futures::future::ready)
        .collect()
        .await;
    let synced_time = t3.elapsed();
    let rss_streams = proc_status(pid, "VmRSS:");
    let hwm = proc_status(pid, "VmHWM:");
    let threads = proc_status(pid, "Threads:");

    // SIGTERM with every stream still open: shutdown must end them.
    // SAFETY: signals our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let t2 = Instant::now();
    let status = child.wait()?;
    println!(
        "{}",
        serde_json::json!({
            "leaves": leaves,
            "ports": ports.len(),
            "answered_capabilities": answered,
            "ready_ms": ready_after.as_millis() as u64,
            "sim_reported_start_ms": ready["start_ms"],
            "probe_all_ports_ms": probe_time.as_millis() as u64,
            "streams_synced": streams.len(),
            "all_streams_synced_ms": synced_time.as_millis() as u64,
            "rss_at_ready": rss_ready,
            "rss_after_probe": rss_after,
            "rss_with_streams": rss_streams,
            "rss_peak": hwm,
            "threads": threads,
            "shutdown_ms": t2.elapsed().as_millis() as u64,
            "exit": status.code(),
            "sim_nofile_soft_at_start": sim_nofile,
        })
    );
    if answered != leaves || streams.len() != leaves {
        return Err(format!(
            "{answered} of {leaves} leaves answered Capabilities, {} synced a subscription",
            streams.len()
        )
        .into());
    }
    Ok(())
}

type Held = (tokio::sync::mpsc::Sender<gnmi_proto::SubscribeRequest>, tonic::Streaming<gnmi_proto::SubscribeResponse>);

/// Subscribes to a leaf's interfaces and BGP neighbors; returns the open stream once synced.
async fn subscribe_until_sync(port: u16) -> Option<Held> {
    use gnmi_proto::{Path, PathElem, Subscription, SubscriptionList, subscribe_request, subscribe_response};
    let ch = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}")).ok()?.connect().await.ok()?;
    let mut c = GNmiClient::with_interceptor(ch, |mut r: tonic::Request<()>| {
        r.metadata_mut().insert("username", tonic::metadata::MetadataValue::from_static("admin"));
        r.metadata_mut().insert("password", tonic::metadata::MetadataValue::from_static("NokiaSrl1!"));
        Ok(r)
    });
    let elem = |name: &str, key: Option<(&str, &str)>| PathElem {
        name: name.into(),
        key: key.map(|(k, v)| (k.to_string(), v.to_string())).into_iter().collect(),
    };
    let sub = |elems: Vec<PathElem>| Subscription {
        path: Some(Path { elem: elems, ..Default::default() }),
        mode: 1,
        ..Default::default()
    };
    let list = SubscriptionList {
        subscription: vec![
            sub(vec![elem("interface", Some(("name", "*"))), elem("oper-state", None)]),
            sub(vec![
                elem("network-instance", Some(("name", "default"))),
                elem("protocols", None),
                elem("bgp", None),
                elem("neighbor", None),
            ]),
        ],
        encoding: gnmi_proto::Encoding::JsonIetf as i32,
        ..Default::default()
    };
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(gnmi_proto::SubscribeRequest { request: Some(subscribe_request::Request::Subscribe(list)) }).await.ok()?;
    let mut stream = c.subscribe(tokio_stream::wrappers::ReceiverStream::new(rx)).await.ok()?.into_inner();
    while let Some(r) = stream.message().await.ok()? {
        if matches!(r.response, Some(subscribe_response::Response::SyncResponse(true))) {
            return Some((tx, stream));
        }
    }
    None
}
