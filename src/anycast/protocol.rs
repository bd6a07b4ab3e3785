//! ExaBGP's process API, text side: the command lines we write and the lines ExaBGP
//! writes back (text or JSON encoder).

use std::fmt::Write as _;

use super::machine::Route;
use crate::anycast::config::Community;

/// `announce route PREFIX next-hop NH [med N] [local-preference N] [as-path [ .. ]]
/// [community [ .. ]] [large-community [ .. ]]`.
pub fn announce(route: &Route) -> String {
    format!("announce route {}", route_spec(route))
}

/// A withdraw carries the same next-hop and attributes as the announcement it removes:
/// ExaBGP 4.x matches withdraws by what was announced.
pub fn withdraw(route: &Route) -> String {
    format!("withdraw route {}", route_spec(route))
}

fn route_spec(r: &Route) -> String {
    let mut s = format!("{} next-hop {}", r.prefix, r.next_hop);
    let a = &r.attrs;
    if let Some(med) = a.med {
        let _ = write!(s, " med {med}");
    }
    if let Some(lp) = a.local_preference {
        let _ = write!(s, " local-preference {lp}");
    }
    if !a.as_path.is_empty() {
        let path: Vec<String> = a.as_path.iter().map(u32::to_string).collect();
        let _ = write!(s, " as-path [ {} ]", path.join(" "));
    }
    let (standard, large): (Vec<Community>, Vec<Community>) =
        a.communities.iter().partition(|c| matches!(c, Community::Standard(..)));
    for (key, list) in [("community", standard), ("large-community", large)] {
        if !list.is_empty() {
            let items: Vec<String> = list.iter().map(Community::to_string).collect();
            let _ = write!(s, " {key} [ {} ]", items.join(" "));
        }
    }
    s
}

/// One line ExaBGP wrote to our stdin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    Done,
    Error,
    /// ExaBGP is stopping (`shutdown`, newer versions append pids).
    Shutdown,
    /// A neighbor session reached Established (needs `api { neighbor-changes; }`).
    NeighborUp(String),
    NeighborDown(String),
    /// Anything else (updates, keepalives, connected, ...): ignored.
    Other,
}

/// Parse one line from either encoder. Text: `done`, `error`, `shutdown ...`,
/// `neighbor A up`, `neighbor A down - reason`. JSON: `{"answer": "done"|"error"}` (newer
/// ExaBGP), `{"type": "notification", "notification": "shutdown"}`,
/// `{"type": "state", "neighbor": {"address": {"peer": A}, "state": "up"|"down"}}`.
pub fn parse(line: &str) -> Incoming {
    let line = line.trim();
    if line.starts_with('{') {
        return parse_json(line);
    }
    if line == "done" {
        return Incoming::Done;
    }
    if line == "error" {
        return Incoming::Error;
    }
    if line.starts_with("shutdown") {
        return Incoming::Shutdown;
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["neighbor", peer, "up"] => Incoming::NeighborUp(peer.to_string()),
        ["neighbor", peer, "down", ..] => Incoming::NeighborDown(peer.to_string()),
        _ => Incoming::Other,
    }
}

fn parse_json(line: &str) -> Incoming {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
        return Incoming::Other;
    };
    match v.get("answer").and_then(|a| a.as_str()) {
        Some("done") => return Incoming::Done,
        Some("error") => return Incoming::Error,
        Some("shutdown") => return Incoming::Shutdown,
        _ => {}
    }
    match v.get("type").and_then(|t| t.as_str()) {
        Some("notification") if v.get("notification").and_then(|n| n.as_str()) == Some("shutdown") => {
            Incoming::Shutdown
        }
        Some("state") => {
            let neighbor = &v["neighbor"];
            let peer = neighbor["address"]["peer"].as_str().unwrap_or("?").to_string();
            match neighbor["state"].as_str() {
                Some("up") => Incoming::NeighborUp(peer),
                Some("down") => Incoming::NeighborDown(peer),
                _ => Incoming::Other,
            }
        }
        _ => Incoming::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anycast::config::{Attributes, NextHop};

    fn route(prefix: &str, nh: NextHop, attrs: Attributes) -> Route {
        Route { prefix: prefix.parse().unwrap(), next_hop: nh, attrs }
    }

    #[test]
    fn golden_lines() {
        let plain = route("192.0.2.1/32", NextHop::SelfAddress, Attributes { med: Some(100), ..Default::default() });
        assert_eq!(announce(&plain), "announce route 192.0.2.1/32 next-hop self med 100");
        assert_eq!(withdraw(&plain), "withdraw route 192.0.2.1/32 next-hop self med 100");

        let full = route(
            "2001:db8::/64",
            NextHop::Address("2001:db8:1::1".parse().unwrap()),
            Attributes {
                med: Some(1000),
                local_preference: Some(200),
                as_path: vec![65001, 65001],
                communities: vec![
                    Community::Standard(65000, 1),
                    Community::Large(65000, 1, 2),
                    Community::Standard(65000, 666),
                ],
            },
        );
        assert_eq!(
            announce(&full),
            "announce route 2001:db8::/64 next-hop 2001:db8:1::1 med 1000 local-preference 200 \
             as-path [ 65001 65001 ] community [ 65000:1 65000:666 ] large-community [ 65000:1:2 ]"
        );
        let bare = route("198.51.100.0/24", NextHop::Address("192.0.2.9".parse().unwrap()), Attributes::default());
        assert_eq!(withdraw(&bare), "withdraw route 198.51.100.0/24 next-hop 192.0.2.9");
    }

    #[test]
    fn parses_text_encoder_lines() {
        assert_eq!(parse("done\n"), Incoming::Done);
        assert_eq!(parse("error"), Incoming::Error);
        assert_eq!(parse("shutdown"), Incoming::Shutdown);
        assert_eq!(parse("shutdown 1234 1"), Incoming::Shutdown);
        assert_eq!(parse("neighbor 10.0.0.2 up"), Incoming::NeighborUp("10.0.0.2".into()));
        assert_eq!(parse("neighbor 10.0.0.2 down - peer reset"), Incoming::NeighborDown("10.0.0.2".into()));
        assert_eq!(parse("neighbor 10.0.0.2 connected"), Incoming::Other);
        assert_eq!(parse("donE"), Incoming::Other);
        assert_eq!(parse(""), Incoming::Other);
    }

    #[test]
    fn parses_json_encoder_lines() {
        let up = r#"{ "exabgp": "4.0.1", "time": 1.0, "host" : "h", "pid" : 1, "ppid" : 1, "counter": 1, "type": "state", "neighbor": { "address": { "local": "10.0.0.1", "peer": "10.0.0.2" }, "asn": { "local": 65001, "peer": 65000 } , "state": "up"} }"#;
        assert_eq!(parse(up), Incoming::NeighborUp("10.0.0.2".into()));
        assert_eq!(
            parse(&up.replace("\"up\"", "\"down\", \"reason\": \"x\"")),
            Incoming::NeighborDown("10.0.0.2".into())
        );
        assert_eq!(parse(&up.replace("\"up\"", "\"connected\"")), Incoming::Other);
        let shutdown = r#"{ "exabgp": "4.0.1", "time": 1.0, "type": "notification", "notification": "shutdown" }"#;
        assert_eq!(parse(shutdown), Incoming::Shutdown);
        assert_eq!(parse(r#"{"answer": "done", "message": "command completed"}"#), Incoming::Done);
        assert_eq!(parse(r#"{"answer": "error", "message": "x"}"#), Incoming::Error);
        assert_eq!(parse("{not json"), Incoming::Other);
    }
}
