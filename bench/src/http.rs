//! A minimal HTTP/1.1 client for fabric-sim's control API and opergroupd's probes.
//!
//! One keep-alive connection per `Conn`, requests in turn: the storm needs thousands of
//! POSTs within 100 ms, which a new TCP connection per request would not allow on two
//! cores. Content-Length and chunked bodies are honoured; that is all the two servers use.

use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Conn {
    addr: String,
    stream: Option<BufReader<TcpStream>>,
}

pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON, or an error naming the request and what came back.
    pub fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, String> {
        if !(200..300).contains(&self.status) {
            return Err(format!("{what}: HTTP {} {}", self.status, String::from_utf8_lossy(&self.body).trim()));
        }
        serde_json::from_slice(&self.body).map_err(|e| format!("{what}: bad JSON answer: {e}"))
    }
}

impl Conn {
    pub fn new(addr: impl Into<String>) -> Self {
        Conn { addr: addr.into(), stream: None }
    }

    pub async fn get(&mut self, path: &str) -> Result<Response, String> {
        self.request("GET", path, None).await
    }

    pub async fn delete(&mut self, path: &str) -> Result<Response, String> {
        self.request("DELETE", path, None).await
    }

    pub async fn post(&mut self, path: &str, body: &serde_json::Value) -> Result<Response, String> {
        self.request("POST", path, Some(body.to_string())).await
    }

    /// One request; a kept-alive connection the server closed meanwhile is reopened once.
    async fn request(&mut self, method: &str, path: &str, body: Option<String>) -> Result<Response, String> {
        let reused = self.stream.is_some();
        match tokio::time::timeout(TIMEOUT, self.exchange(method, path, body.as_deref())).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(_)) if reused => {
                self.stream = None;
                tokio::time::timeout(TIMEOUT, self.exchange(method, path, body.as_deref()))
                    .await
                    .map_err(|_| format!("{method} http://{}{path}: no answer within {TIMEOUT:?}", self.addr))?
            }
            Ok(Err(e)) => Err(e),
            Err(_) => {
                self.stream = None;
                Err(format!("{method} http://{}{path}: no answer within {TIMEOUT:?}", self.addr))
            }
        }
    }

    async fn exchange(&mut self, method: &str, path: &str, body: Option<&str>) -> Result<Response, String> {
        let addr = self.addr.clone();
        let err = |e: std::io::Error| format!("{method} http://{addr}{path}: {e}");
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.addr).await.map_err(err)?;
            s.set_nodelay(true).map_err(err)?;
            self.stream = Some(BufReader::new(s));
        }
        let stream = self.stream.as_mut().expect("connected above");
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        if let Some(b) = body {
            req += &format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}", b.len());
        } else {
            req += "\r\n";
        }
        let result = async {
            stream.get_mut().write_all(req.as_bytes()).await?;
            read_response(stream).await
        }
        .await;
        match result {
            Ok((resp, keep)) => {
                if !keep {
                    self.stream = None;
                }
                Ok(resp)
            }
            Err(e) => {
                self.stream = None;
                Err(err(e))
            }
        }
    }
}

fn bad(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}

/// Reads one response; also says whether the connection stays usable.
async fn read_response(s: &mut BufReader<TcpStream>) -> std::io::Result<(Response, bool)> {
    let mut line = String::new();
    if s.read_line(&mut line).await? == 0 {
        return Err(bad("connection closed before the status line".into()));
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| bad(format!("bad status line {line:?}")))?;
    let (mut length, mut chunked, mut keep) = (None, false, true);
    loop {
        line.clear();
        if s.read_line(&mut line).await? == 0 {
            return Err(bad("connection closed inside the headers".into()));
        }
        let h = line.trim_end();
        if h.is_empty() {
            break;
        }
        let Some((name, value)) = h.split_once(':') else { continue };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => {
                length = Some(value.parse::<usize>().map_err(|_| bad(format!("bad content-length {value:?}")))?)
            }
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => keep = !value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if status == 204 || status == 304 || (100..200).contains(&status) {
        // No body by definition.
    } else if chunked {
        loop {
            line.clear();
            s.read_line(&mut line).await?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad(format!("bad chunk size {line:?}")))?;
            let start = body.len();
            body.resize(start + size, 0);
            s.read_exact(&mut body[start..]).await?;
            line.clear();
            s.read_line(&mut line).await?; // CRLF after the chunk (or the trailer end)
            if size == 0 {
                break;
            }
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        s.read_exact(&mut body).await?;
    } else {
        s.read_to_end(&mut body).await?;
        keep = false;
    }
    Ok((Response { status, body }, keep))
}
