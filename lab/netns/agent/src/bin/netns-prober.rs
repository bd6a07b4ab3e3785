//! netns-prober: sequence-numbered UDP probes to a peer prober, and what came back.
//!
//! Both clients run one; each sends `--rate` packets a second from `--start-at` for
//! `--duration`, and records every sequence number it receives from the other. Loss is
//! counted as sent minus received, so an outage lasting to the end of the window counts
//! (iperf3's UDP loss counter does not). Packet: seq (u64 BE) + send time (unix ns, i64 BE).

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    bind: SocketAddr,
    #[arg(long)]
    peer: SocketAddr,
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    #[arg(long, value_name = "MS")]
    duration_ms: u64,
    /// Start sending at this unix time in milliseconds (both probers share one start).
    #[arg(long, value_name = "UNIX_MS")]
    start_at: u64,
    /// Keep receiving this long after the last send, for packets still in flight.
    #[arg(long, default_value_t = 500, value_name = "MS")]
    linger_ms: u64,
}

fn unix_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

fn main() {
    let a = Args::parse();
    if let Err(e) = run(&a) {
        eprintln!("netns-prober: {e}");
        std::process::exit(2);
    }
}

fn run(a: &Args) -> Result<(), String> {
    if a.rate == 0 || a.rate > 100_000 {
        return Err(format!("--rate {} is out of range 1..=100000", a.rate));
    }
    let rx = UdpSocket::bind(a.bind).map_err(|e| format!("cannot bind {}: {e}", a.bind))?;
    // Sending never blocks: while the peer's ARP entry is unresolved the kernel queues our
    // packets against the socket's send buffer, and a blocking sender would fall seconds
    // behind its schedule. A packet that cannot be queued now is lost, like on the wire.
    let sock = UdpSocket::bind((a.bind.ip(), 0)).map_err(|e| format!("cannot bind {}: {e}", a.bind.ip()))?;
    sock.set_nonblocking(true).map_err(|e| e.to_string())?;
    let start_ns = u128::from(a.start_at) * 1_000_000;
    let total = a.rate * a.duration_ms / 1000;
    let end_ns = start_ns + u128::from(a.duration_ms + a.linger_ms) * 1_000_000;
    let receiver = std::thread::spawn(move || {
        let mut got = BTreeMap::new();
        let mut buf = [0u8; 64];
        loop {
            let now = unix_ns();
            if now >= end_ns {
                return got;
            }
            let left = Duration::from_nanos(((end_ns - now) as u64).max(1_000_000));
            let _ = rx.set_read_timeout(Some(left.min(Duration::from_millis(100))));
            if let Ok((n, _)) = rx.recv_from(&mut buf)
                && n >= 16
            {
                let seq = u64::from_be_bytes(buf[..8].try_into().unwrap_or_default());
                let sent = i64::from_be_bytes(buf[8..16].try_into().unwrap_or_default()) as i128;
                // When it really left the peer, in µs since the shared start (the peer may
                // have sent late, in a burst, when its CPU was busy).
                let at_us = (sent - start_ns as i128) / 1000;
                got.insert(seq, at_us);
            }
        }
    });
    let mut send_errors = 0u64;
    for seq in 0..total {
        let due = start_ns + u128::from(seq) * 1_000_000_000 / u128::from(a.rate);
        let now = unix_ns();
        if due > now {
            std::thread::sleep(Duration::from_nanos((due - now) as u64));
        }
        let mut pkt = [0u8; 16];
        pkt[..8].copy_from_slice(&seq.to_be_bytes());
        pkt[8..].copy_from_slice(&(unix_ns() as i64).to_be_bytes());
        // No route or no neighbor during an outage is loss, not a failure of the prober.
        if sock.send_to(&pkt, a.peer).is_err() {
            send_errors += 1;
        }
    }
    let got = receiver.join().map_err(|_| "receiver thread panicked".to_string())?;
    let received: Vec<String> = got.iter().map(|(seq, at)| format!("[{seq},{at}]")).collect();
    println!(
        "{{\"start_unix_ms\":{},\"rate\":{},\"sent\":{total},\"send_errors\":{send_errors},\"received\":[{}]}}",
        a.start_at,
        a.rate,
        received.join(",")
    );
    Ok(())
}
