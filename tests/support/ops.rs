//! Helpers for the end-to-end operator tests (tests/ops_*.rs): an independent HTTP client
//! for /status and /metrics, a reader for metric samples, waiting on conditions with
//! deadlines, and `opergroupd` child processes that die with the test.
#![allow(dead_code)] // each test binary uses a different part of it

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opergroupd::status::StatusDocument;
use opergroupd::status::document::{GroupStatus, TargetStatus};

/// The leaves' credentials in fabric-sim's defaults.
pub const FABRIC_USER: &str = "admin";
pub const FABRIC_PASSWORD: &str = "NokiaSrl1!";

pub struct Http {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

/// GET `http://{addr}{path}` with hyper's client (not the hand-written one `opergroupd
/// status` uses), within 5 s.
pub async fn get(addr: SocketAddr, path: &str) -> Result<Http, String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let uri: hyper::Uri = format!("http://{addr}{path}").parse().map_err(|e| format!("{e}"))?;
    let exchange = async {
        let resp = client.get(uri).await.map_err(|e| format!("GET {path} from {addr}: {e}"))?;
        let status = resp.status().as_u16();
        let content_type =
            resp.headers().get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = resp.into_body().collect().await.map_err(|e| format!("body of {path}: {e}"))?.to_bytes();
        let body = String::from_utf8(body.to_vec()).map_err(|e| format!("body of {path} is not UTF-8: {e}"))?;
        Ok(Http { status, content_type, body })
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .map_err(|_| format!("GET {path} from {addr}: no answer in 5 s"))?
}

pub async fn status(addr: SocketAddr) -> StatusDocument {
    let r = get(addr, "/status").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 200, "/status: {}", r.body);
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("/status does not decode: {e}\n{}", r.body))
}

pub async fn metrics(addr: SocketAddr) -> String {
    let r = get(addr, "/metrics").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 200, "/metrics: {}", r.body);
    assert_eq!(r.content_type.as_deref(), Some(opergroupd::status::METRICS_CONTENT_TYPE));
    r.body
}

pub fn group<'a>(doc: &'a StatusDocument, name: &str) -> &'a GroupStatus {
    doc.groups.iter().find(|g| g.name == name).unwrap_or_else(|| panic!("no group {name} in /status"))
}

pub fn target<'a>(doc: &'a StatusDocument, name: &str) -> &'a TargetStatus {
    doc.targets.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no target {name} in /status"))
}

/// The value of one sample, `name{a="x",b="y"}` (labels in any order); None if absent.
/// Label values in these tests hold no quotes, commas or braces.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    let want = split_series(series);
    metrics.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        (split_series(series) == want).then(|| value.parse().ok())?
    })
}

fn split_series(series: &str) -> (String, Vec<(String, String)>) {
    let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
    let mut labels: Vec<(String, String)> = labels
        .trim_end_matches('}')
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect();
    labels.sort();
    (name.to_string(), labels)
}

/// Polls `probe` every 20 ms until it returns Some, or panics after `within` naming `what`
/// and the last thing `probe` saw (`last`).
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let end = Instant::now() + within;
    loop {
        let last = match probe().await {
            Ok(v) => return v,
            Err(last) => last,
        };
        assert!(Instant::now() < end, "timed out after {within:?} waiting for {what}; last seen: {last}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("opergroupd-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The controller's YAML for `leaves` of a fabric-sim: one group per leaf, both uplinks
/// watched (1 required), the downlink enforced, BGP/EVPN readiness as in the reference.
pub fn fabric_config(leaves: &[(String, SocketAddr)], extra: &str) -> String {
    let mut y = format!(
        "defaults:\n  username: {FABRIC_USER}\n  password: \"{FABRIC_PASSWORD}\"\n  tls: {{ insecure: true }}\ntargets:\n"
    );
    for (name, addr) in leaves {
        y += &format!("  {name}: {{ address: \"{addr}\" }}\n");
    }
    y += "groups:\n";
    for (name, _) in leaves {
        y += &format!(
            "  {name}-es1:\n    target: {name}\n    uplinks: [\"ethernet-1/{{49..50}}\"]\n    required-up: 1\n    downlinks: [\"ethernet-1/1\"]\n    readiness:\n      bgp-neighbors: [\"10.0.1.1\", \"10.0.1.2\"]\n      min-established: 1\n      evpn-min-received-routes: 1\n"
        );
    }
    y + extra
}

/// A running `opergroupd` process, killed (SIGKILL) when dropped so a failing test leaves
/// nothing behind. Its stdout and stderr lines are collected as they come.
pub struct Opergroupd {
    pub name: String,
    child: Child,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Opergroupd {
    /// `opergroupd run --config CONFIG --http 127.0.0.1:0 --log-format json ARGS...`
    /// with `env` added to the environment.
    pub fn run(name: &str, config: &Path, args: &[&str], env: &[(&str, &str)]) -> Opergroupd {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_opergroupd"));
        cmd.arg("run").arg("--config").arg(config).args(["--http", "127.0.0.1:0", "--log-format", "json"]);
        cmd.args(args);
        // Never an in-cluster client by accident, never a developer's kubeconfig.
        cmd.env_remove("KUBERNETES_SERVICE_HOST").env_remove("KUBERNETES_SERVICE_PORT").env_remove("KUBECONFIG");
        cmd.env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn opergroupd ({name}): {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().expect("piped stdout"), stdout.clone()),
            collect(child.stderr.take().expect("piped stderr"), stderr.clone()),
        ];
        Opergroupd { name: name.to_string(), child, stdout, stderr, readers }
    }

    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// The status server's address, from the JSON log line that announces it.
    pub async fn http_addr(&self) -> SocketAddr {
        eventually(
            &format!("{}: the status server's address in its log", self.name),
            Duration::from_secs(10),
            || async {
                self.stderr_lines()
                    .iter()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .find_map(|v| v.get("bound").and_then(|b| b.as_str()).and_then(|b| b.parse().ok()))
                    .ok_or_else(|| {
                        format!("no line with a `bound` field yet; stderr: {}", self.stderr_lines().join("\n"))
                    })
            },
        )
        .await
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn sigterm(&self) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits");
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill -TERM {pid}: {}", std::io::Error::last_os_error());
    }

    /// Waits for the process to exit (after `sigterm`), up to `within`; returns its status
    /// and joins the output readers.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let end = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                for r in self.readers.drain(..) {
                    let _ = r.join();
                }
                return status;
            }
            assert!(Instant::now() < end, "{} did not exit within {within:?}", self.name);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Opergroupd {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- {} stderr ----\n{}", self.name, self.stderr_lines().join("\n"));
        }
    }
}

fn collect(pipe: impl std::io::Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            match line {
                Ok(line) => into.lock().unwrap().push(line),
                Err(_) => break,
            }
        }
    })
}
