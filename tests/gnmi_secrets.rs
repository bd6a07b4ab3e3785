//! The password never appears in any log line, at any level, from the gNMI client
//! (and the libraries under it: tonic, hyper, h2, rustls) — on success, on refused
//! authentication, and on Set.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opergroupd::config::{Secret, Target, Tls};
use opergroupd::gnmi::subscription::Subscriptions;
use opergroupd::gnmi::{ConnectOptions, Setter, SourceOptions, spawn_source};
use opergroupd::model::{AdminState, SourceEvent};
use opergroupd::srl_paths;
use support::*;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const WRONG: &str = "Wr0ng-S3cret";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn target(addr: &str, password: &str) -> Arc<Target> {
    Arc::new(Target {
        name: "leaf1".into(),
        address: addr.into(),
        username: Some(USER.into()),
        password: Some(Secret::new(password.into())),
        tls: Tls::Insecure,
        liveness: None,
        reconnect_max: std::time::Duration::from_secs(2),
    })
}

#[test]
fn password_appears_in_no_log_line_at_any_level() {
    // The servers run on their own threads, outside the captured subscriber: only the
    // client's logs are judged.
    let server_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = server_rt.block_on(TestServer::start(Script::default()));
    let addr = server.addr.to_string();

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let client_rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    tracing::subscriber::with_default(subscriber, || {
        client_rt.block_on(async {
            let opts = SourceOptions {
                backoff_min: Duration::from_millis(20),
                backoff_max: Duration::from_millis(50),
                ..SourceOptions::default()
            };
            let paths = vec![srl_paths::oper_state("ethernet-1/49")];
            let cancel = CancellationToken::new();

            let (tx, mut rx) = mpsc::channel(64);
            let good = spawn_source(
                target(&addr, PASSWORD),
                Subscriptions::every_path(paths.clone()),
                tx,
                opts.clone(),
                cancel.clone(),
            );
            recv_until(&mut rx, "Synced", Duration::from_secs(10), |e| matches!(e, SourceEvent::Synced { .. })).await;

            let (tx, mut rx) = mpsc::channel(64);
            let bad = spawn_source(target(&addr, WRONG), Subscriptions::every_path(paths), tx, opts, cancel.clone());
            recv_until(&mut rx, "second refusal", Duration::from_secs(10), |e| {
                matches!(e, SourceEvent::Connecting { attempt: 2, .. })
            })
            .await;

            let setter = Setter::new(ConnectOptions::default(), Duration::from_secs(5));
            setter
                .set(&target(&addr, PASSWORD), &[(srl_paths::admin_state("ethernet-1/1"), AdminState::Disable)], None)
                .await
                .expect("set");
            setter
                .set(&target(&addr, WRONG), &[(srl_paths::admin_state("ethernet-1/1"), AdminState::Disable)], None)
                .await
                .unwrap_err();

            cancel.cancel();
            good.await.unwrap();
            bad.await.unwrap();
        });
    });

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    // The capture worked and covered every level we care about, down to TRACE.
    assert!(logs.contains("synced"), "no info line captured:\n{logs}");
    assert!(logs.contains("authentication refused"), "no warn line captured:\n{logs}");
    assert!(logs.contains("TRACE"), "no trace line captured");
    for secret in [PASSWORD, WRONG] {
        if let Some(line) = logs.lines().find(|l| l.contains(secret)) {
            panic!("password leaked into a log line: {line}");
        }
    }
    drop(server);
}
