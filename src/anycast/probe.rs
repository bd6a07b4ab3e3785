//! Health checks: TCP connect, HTTP GET, exec. Each runs under the service's timeout;
//! an exec check that overruns (or is cancelled) has its whole process group killed.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio::time::timeout;

use crate::anycast::config::{Check, HostPort, HttpUrl};

/// The outcome of one round of checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub healthy: bool,
    /// For people: the first failure, or "ok".
    pub detail: String,
}

/// Run every check (in order, stopping at the first failure). No checks means healthy.
pub async fn run_all(checks: &[Check], limit: Duration) -> Report {
    for check in checks {
        if let Err(why) = run_one(check, limit).await {
            return Report { healthy: false, detail: format!("{check}: {why}") };
        }
    }
    Report { healthy: true, detail: "ok".into() }
}

/// Run one check under `limit`.
pub async fn run_one(check: &Check, limit: Duration) -> Result<(), String> {
    let work = async {
        match check {
            Check::Tcp { address } => tcp(address).await,
            Check::Http { url, status } => http(url, *status).await,
            Check::Exec { command, exit_code } => exec(command, *exit_code).await,
        }
    };
    // Dropping `work` on timeout kills an exec check's process group (see GroupKill).
    timeout(limit, work).await.unwrap_or_else(|_| Err(format!("timed out after {limit:?}")))
}

async fn connect(hp: &HostPort) -> Result<TcpStream, String> {
    TcpStream::connect((hp.host.as_str(), hp.port)).await.map_err(|e| format!("connect {hp}: {e}"))
}

async fn tcp(hp: &HostPort) -> Result<(), String> {
    connect(hp).await.map(drop)
}

/// A minimal HTTP/1.1 GET: only the status line matters.
async fn http(url: &HttpUrl, want: u16) -> Result<(), String> {
    let mut stream = connect(&url.host).await?;
    let host = match (url.host.port, url.host.host.contains(':')) {
        (80, false) => url.host.host.clone(),
        (80, true) => format!("[{}]", url.host.host),
        _ => url.host.to_string(),
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: opergroupd\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        url.path
    );
    stream.write_all(request.as_bytes()).await.map_err(|e| format!("send: {e}"))?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 4096 {
        let n = stream.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or("");
    let got = parse_status_line(line).ok_or_else(|| format!("not an HTTP response: {line:?}"))?;
    if got == want { Ok(()) } else { Err(format!("status {got}, expected {want}")) }
}

fn parse_status_line(line: &str) -> Option<u16> {
    let mut parts = line.split_whitespace();
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// Kills a process group when dropped: on timeout, on cancellation, and after a normal
/// exit (children the check left behind).
struct GroupKill(i32);

impl Drop for GroupKill {
    fn drop(&mut self) {
        // SAFETY: kill(2) with a negative pid signals the process group we created; no
        // memory is involved. ESRCH (already gone) is fine.
        unsafe {
            libc::kill(-self.0, libc::SIGKILL);
        }
    }
}

async fn exec(command: &str, want: i32) -> Result<(), String> {
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let pid = child.id().ok_or("the check exited before it could be tracked")?;
    let _group = GroupKill(pid as i32);
    let status = child.wait().await.map_err(|e| format!("wait: {e}"))?;
    match status.code() {
        Some(code) if code == want => Ok(()),
        Some(code) => Err(format!("exit code {code}, expected {want}")),
        None => Err("killed by a signal".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tokio::net::TcpListener;

    const T: Duration = Duration::from_secs(2);

    fn hp(addr: std::net::SocketAddr) -> HostPort {
        HostPort { host: addr.ip().to_string(), port: addr.port() }
    }

    #[tokio::test]
    async fn tcp_up_and_down() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(run_one(&Check::Tcp { address: hp(addr) }, T).await, Ok(()));
        drop(listener);
        let err = run_one(&Check::Tcp { address: hp(addr) }, T).await.unwrap_err();
        assert!(err.contains("connect"), "{err}");
    }

    async fn serve_once(response: &'static str) -> (std::net::SocketAddr, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            s.write_all(response.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (addr, task)
    }

    #[tokio::test]
    async fn http_status_is_compared() {
        let (addr, task) = serve_once("HTTP/1.1 204 No Content\r\n\r\n").await;
        let url = HttpUrl { host: hp(addr), path: "/health".into() };
        assert_eq!(run_one(&Check::Http { url: url.clone(), status: 204 }, T).await, Ok(()));
        let request = task.await.unwrap();
        assert!(request.starts_with("GET /health HTTP/1.1\r\n"), "{request}");
        assert!(request.contains(&format!("Host: {addr}\r\n")), "{request}");

        let (addr, _t) = serve_once("HTTP/1.1 503 Service Unavailable\r\n\r\n").await;
        let url = HttpUrl { host: hp(addr), path: "/".into() };
        let err = run_one(&Check::Http { url, status: 200 }, T).await.unwrap_err();
        assert!(err.contains("status 503, expected 200"), "{err}");

        let (addr, _t) = serve_once("SSH-2.0-nope\r\n").await;
        let url = HttpUrl { host: hp(addr), path: "/".into() };
        let err = run_one(&Check::Http { url, status: 200 }, T).await.unwrap_err();
        assert!(err.contains("not an HTTP response"), "{err}");
    }

    #[tokio::test]
    async fn http_that_never_answers_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = HttpUrl { host: hp(listener.local_addr().unwrap()), path: "/".into() };
        let err = run_one(&Check::Http { url, status: 200 }, Duration::from_millis(200)).await.unwrap_err();
        assert!(err.contains("timed out"), "{err}");
    }

    #[tokio::test]
    async fn exec_exit_codes() {
        let check = |c: &str, code| Check::Exec { command: c.into(), exit_code: code };
        assert_eq!(run_one(&check("exit 0", 0), T).await, Ok(()));
        assert_eq!(run_one(&check("exit 3", 3), T).await, Ok(()));
        let err = run_one(&check("exit 1", 0), T).await.unwrap_err();
        assert!(err.contains("exit code 1, expected 0"), "{err}");
    }

    #[tokio::test]
    async fn exec_timeout_kills_the_whole_process_group() {
        let dir = std::env::temp_dir().join(format!("opergroupd-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("grandchild.pid");
        // A grandchild in the background that would outlive a plain kill of `sh`.
        let cmd = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let start = Instant::now();
        let err = run_one(&Check::Exec { command: cmd, exit_code: 0 }, Duration::from_millis(300)).await.unwrap_err();
        assert!(err.contains("timed out"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        // The grandchild must be gone (reaped by init or a zombie no longer running).
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let gone = stat.is_empty() || stat.split_whitespace().nth(2) == Some("Z");
            if gone {
                break;
            }
            assert!(Instant::now() < deadline, "grandchild {pid} still running: {stat}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[tokio::test]
    async fn all_checks_must_pass() {
        let ok = Check::Exec { command: "true".into(), exit_code: 0 };
        let ko = Check::Exec { command: "false".into(), exit_code: 0 };
        assert!(run_all(&[], T).await.healthy);
        assert!(run_all(&[ok.clone(), ok.clone()], T).await.healthy);
        let r = run_all(&[ok, ko], T).await;
        assert!(!r.healthy);
        assert!(r.detail.starts_with("exec `false`"), "{}", r.detail);
    }
}
