//! `opergroupd status`: fetch `/status` from a running controller and print it.
//!
//! A minimal HTTP/1.1 GET over a TcpStream: one request, `Connection: close`, body read to
//! the end (Content-Length or chunked honoured). Enough for our own server, no client stack.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::StatusError;
use super::document::StatusDocument;
use super::table;

/// Connect, send, read: the whole exchange must finish within this.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Larger answers are refused: a status document is kilobytes.
const MAX_RESPONSE: u64 = 16 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

/// GET `path` from `addr` (`host:port`).
pub async fn http_get(addr: &str, path: &str) -> Result<HttpResponse, StatusError> {
    tokio::time::timeout(TIMEOUT, exchange(addr, path))
        .await
        .map_err(|_| StatusError::Timeout { addr: addr.to_string(), after: TIMEOUT })?
}

async fn exchange(addr: &str, path: &str) -> Result<HttpResponse, StatusError> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| StatusError::Connect {
        addr: addr.to_string(),
        reason: match e.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
            _ => e.to_string(),
        },
    })?;
    let io_err = |e: std::io::Error| StatusError::Protocol { addr: addr.to_string(), detail: e.to_string() };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\nConnection: close\r\nUser-Agent: opergroupd\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.map_err(io_err)?;
    let mut raw = Vec::new();
    (&mut stream).take(MAX_RESPONSE).read_to_end(&mut raw).await.map_err(io_err)?;
    parse_response(&raw).map_err(|detail| StatusError::Protocol { addr: addr.to_string(), detail })
}

fn parse_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("response ended before its headers did")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "response headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut content_type = None;
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-type" => content_type = Some(value.to_string()),
            "content-length" => content_length = value.parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            _ => {}
        }
    }
    let rest = &raw[split + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(len) = content_length {
        rest.get(..len).ok_or("response body shorter than its Content-Length")?.to_vec()
    } else {
        rest.to_vec()
    };
    let body = String::from_utf8(body).map_err(|_| "response body is not UTF-8")?;
    Ok(HttpResponse { status, content_type, body })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n").ok_or("truncated chunk header")?;
        let size_text = std::str::from_utf8(&rest[..eol]).map_err(|_| "bad chunk header")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| format!("bad chunk size {size_text:?}"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest.get(..size).ok_or("truncated chunk")?;
        body.extend_from_slice(chunk);
        rest = rest.get(size + 2..).ok_or("truncated chunk")?;
    }
}

/// GET and decode `/status`.
pub async fn fetch_status(addr: &str) -> Result<StatusDocument, StatusError> {
    let body = fetch_status_body(addr).await?;
    serde_json::from_str(&body).map_err(|source| StatusError::Decode { addr: addr.to_string(), source })
}

async fn fetch_status_body(addr: &str) -> Result<String, StatusError> {
    let response = http_get(addr, "/status").await?;
    if response.status != 200 {
        return Err(StatusError::Http {
            addr: addr.to_string(),
            status: response.status,
            body: response.body.trim().to_string(),
        });
    }
    Ok(response.body)
}

/// What `opergroupd status [--http ADDR] [--json]` does: `json` passes the document
/// through untouched; otherwise a table for people, coloured only on a terminal and
/// never when `NO_COLOR` is set.
pub async fn print_status(addr: &str, json: bool) -> Result<(), StatusError> {
    let out = if json {
        fetch_status_body(addr).await?
    } else {
        let doc = fetch_status(addr).await?;
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        table::render(&doc, colour)
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush()).map_err(|source| StatusError::Stdout { source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_and_chunked_bodies() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        let r = parse_response(plain).expect("plain response");
        assert_eq!((r.status, r.content_type.as_deref(), r.body.as_str()), (200, Some("application/json"), "{}"));

        let chunked = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nnot\r\n6;x=y\r\n ready\r\n0\r\n\r\n";
        let r = parse_response(chunked).expect("chunked response");
        assert_eq!((r.status, r.body.as_str()), (503, "not ready"));
    }

    #[test]
    fn malformed_responses_are_errors() {
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_response(b"garbage\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n").is_err());
    }
}
