//! The measured scenarios. Every latency is sim clock minus sim clock: the control API's
//! `applied` time (or a notification timestamp) and the Set's `received` time in
//! `GET /v1/sets`, so the bench's own scheduling never enters a figure.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fabric_sim::{Applied, SetOutcome, SetRecord};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Barrier;

use crate::fleet::{Controls, Fleet};
use crate::http::Conn;
use crate::watch::{self, UPLINKS, Watch, within};

/// How long one event may take before it counts as missed.
const EVENT_DEADLINE: Duration = Duration::from_secs(5);

#[derive(Deserialize)]
struct AppliedAnswer {
    applied: Applied,
}

/// One link change as the control API takes it, alone (`/v1/link`) or in a batch (`/v1/links`).
fn link_change(leaf: &str, iface: &str, up: bool) -> serde_json::Value {
    json!({"node": leaf, "interface": iface, "state": if up { "up" } else { "down" }})
}

pub async fn link(c: &mut Conn, leaf: &str, iface: &str, up: bool) -> Result<Applied, String> {
    let r = c.post("/v1/link", &link_change(leaf, iface, up)).await?;
    Ok(r.json::<AppliedAnswer>(&format!("link {leaf} {iface}"))?.applied)
}

#[derive(Deserialize)]
struct AppliedEach {
    applied: Vec<Applied>,
}

/// Several links of one sim in one request (`POST /v1/links`), each applied as by `link`.
pub async fn links(c: &mut Conn, links: &[(String, &str, bool)]) -> Result<Vec<Applied>, String> {
    let links: Vec<_> = links.iter().map(|(leaf, iface, up)| link_change(leaf, iface, *up)).collect();
    let r = c.post("/v1/links", &json!({ "links": links })).await?;
    let applied = r.json::<AppliedEach>(&format!("links ({} of them)", links.len()))?.applied;
    if applied.len() != links.len() {
        return Err(format!("POST /v1/links: {} changes, {} applied moments", links.len(), applied.len()));
    }
    Ok(applied)
}

pub async fn sets(c: &mut Conn) -> Result<Vec<SetRecord>, String> {
    c.get("/v1/sets").await?.json("GET /v1/sets")
}

#[derive(serde::Deserialize)]
struct Count {
    count: usize,
}

pub async fn sets_count(c: &mut Conn) -> Result<usize, String> {
    Ok(c.get("/v1/sets/count").await?.json::<Count>("GET /v1/sets/count")?.count)
}

pub async fn clear_sets(c: &mut Conn) -> Result<(), String> {
    let r = c.delete("/v1/sets").await?;
    if (200..300).contains(&r.status) { Ok(()) } else { Err(format!("DELETE /v1/sets: HTTP {}", r.status)) }
}

/// What opergroupd has done so far, from its /metrics: group evaluations, and the
/// notifications its sources passed on (heartbeat re-sends are dropped before they count).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub evaluations: u64,
    pub notifications: u64,
}

pub async fn counts(addr: &str) -> Result<Counts, String> {
    let r = Conn::new(addr.to_string()).get("/metrics").await?;
    if r.status != 200 {
        return Err(format!("GET {addr}/metrics: HTTP {}", r.status));
    }
    counts_in(&String::from_utf8_lossy(&r.body))
}

/// The sums of `opergroupd_group_evaluations_total` and `opergroupd_notifications_total`
/// over every label set, in an OpenMetrics text.
pub fn counts_in(text: &str) -> Result<Counts, String> {
    let sum = |family: &str| {
        let mut sum = 0;
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(family) else { continue };
            if !rest.starts_with(['{', ' ']) {
                continue;
            }
            let value = line.rsplit(' ').next().unwrap_or_default();
            sum += value.parse::<u64>().map_err(|_| format!("/metrics: not a count in {line:?}"))?;
        }
        Ok::<u64, String>(sum)
    };
    Ok(Counts {
        evaluations: sum("opergroupd_group_evaluations_total")?,
        notifications: sum("opergroupd_notifications_total")?,
    })
}

/// The admin-state value a Set wrote to the downlink, if that is what it did: as the leaf
/// (`.../admin-state` = `"disable"`, opergroupd's form) or inside the interface container
/// (`/interface[name=...]` = `{"admin-state": "disable"}`, the usual pygnmi form).
pub fn downlink_value(s: &SetRecord) -> Option<String> {
    let leaf = opergroupd::srl_paths::admin_state(watch::DOWNLINK);
    let container = leaf.strip_suffix("/admin-state").unwrap_or(&leaf);
    s.updates.iter().chain(&s.replaces).find_map(|u| {
        let v = if u.path == leaf {
            &u.value
        } else if u.path == container {
            u.value.get("admin-state")?
        } else {
            return None;
        };
        Some(match v {
            serde_json::Value::String(v) => v.trim_matches('"').to_string(),
            other => other.to_string(),
        })
    })
}

/// What went wrong, per kind, with one example each: correctness, never timing.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Problems(pub BTreeMap<String, (usize, String)>);

impl Problems {
    pub fn add(&mut self, kind: &str, example: String) {
        let e = self.0.entry(kind.to_string()).or_insert((0, example));
        e.0 += 1;
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The leaves events go to: spread evenly over the fabric, `n` of them (repeating when
/// there are fewer leaves than events).
pub fn spread(leaves: usize, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("leaf{}", if n <= leaves { i * leaves / n } else { i % leaves } + 1)).collect()
}

/// Reaction: per event, both uplinks of a leaf go down (the second one's `applied` is t0);
/// the disable Set's receive time minus t0 is the reaction latency. Then both come back
/// (before the iBGP hold time expires, so readiness still holds) and the event ends when
/// the re-enable took effect. Returns latencies in ns.
pub async fn reaction(
    c: &mut Controls,
    w: &Watch,
    events: &[String],
    problems: &mut Problems,
) -> Result<Vec<u64>, String> {
    c.clear_sets().await?;
    let mut out = Vec::with_capacity(events.len());
    for leaf in events {
        let disabled = w.when(leaf, watch::admin_is("disable"));
        c.link(leaf, UPLINKS[0], false).await?;
        let t0 = c.link(leaf, UPLINKS[1], false).await?;
        let ok_down = within(disabled, EVENT_DEADLINE, &format!("{leaf}: downlink disabled")).await;
        let enabled = w.when(leaf, watch::admin_is("enable"));
        c.link(leaf, UPLINKS[0], true).await?;
        c.link(leaf, UPLINKS[1], true).await?;
        let ok_up = within(enabled, EVENT_DEADLINE, &format!("{leaf}: downlink re-enabled")).await;
        let log = c.sets().await?;
        c.clear_sets().await?;
        if let Err(e) = ok_down {
            problems.add("reaction: no disable Set", e);
            continue;
        }
        if let Err(e) = ok_up {
            problems.add("reaction: no re-enable Set", e);
        }
        let mine: Vec<&SetRecord> = log.iter().filter(|s| &s.node == leaf).collect();
        let disables: Vec<&&SetRecord> =
            mine.iter().filter(|s| downlink_value(s).as_deref() == Some("disable")).collect();
        let enables = mine.iter().filter(|s| downlink_value(s).as_deref() == Some("enable")).count();
        if disables.len() != 1 || enables != 1 || mine.len() != 2 {
            problems.add(
                "reaction: not exactly one disable and one enable Set",
                format!("{leaf}: {} Sets, {} disable, {enables} enable", mine.len(), disables.len()),
            );
        }
        if let Some(s) = disables.first() {
            if s.outcome != SetOutcome::Accepted {
                problems.add("reaction: Set not accepted", format!("{leaf}: {:?} {:?}", s.outcome, s.error));
            }
            out.push(s.received.mono_ns.saturating_sub(t0.mono_ns));
        }
    }
    Ok(out)
}

/// Recovery with readiness: both uplinks down, wait until the iBGP hold time expired (the
/// overlay is gone), bring them back; the sim re-establishes iBGP and then sends EVPN
/// routes. The readiness signal is the notification (sim timestamp, from the bench's own
/// subscription) that first makes the group ready again; the latency runs from it to the
/// enable Set's receive time. An enable received before that moment is a violation.
pub async fn recovery(
    c: &mut Controls,
    w: &Watch,
    events: &[String],
    problems: &mut Problems,
) -> Result<Vec<u64>, String> {
    c.clear_sets().await?;
    let mut out = Vec::with_capacity(events.len());
    for leaf in events {
        let disabled = w.when(leaf, watch::admin_is("disable"));
        let overlay_down = w.when(leaf, watch::overlay_down());
        c.link(leaf, UPLINKS[0], false).await?;
        c.link(leaf, UPLINKS[1], false).await?;
        if let Err(e) = within(disabled, EVENT_DEADLINE, &format!("{leaf}: downlink disabled")).await {
            problems.add("recovery: no disable Set", e);
        }
        if let Err(e) = within(overlay_down, EVENT_DEADLINE, &format!("{leaf}: iBGP down after the hold time")).await {
            problems.add("recovery: iBGP never dropped", e);
        }
        let ready = w.when(leaf, watch::ready());
        let enabled = w.when(leaf, watch::admin_is("enable"));
        c.link(leaf, UPLINKS[0], true).await?;
        c.link(leaf, UPLINKS[1], true).await?;
        let ready_ns = within(ready, EVENT_DEADLINE, &format!("{leaf}: readiness back")).await;
        let ok_up = within(enabled, EVENT_DEADLINE, &format!("{leaf}: downlink re-enabled")).await;
        let log = c.sets().await?;
        c.clear_sets().await?;
        let ready_ns = match (ready_ns, ok_up) {
            (Ok(r), Ok(_)) => r,
            (Err(e), _) | (_, Err(e)) => {
                problems.add("recovery: no readiness or no enable Set", e);
                continue;
            }
        };
        let enables: Vec<&SetRecord> =
            log.iter().filter(|s| &s.node == leaf && downlink_value(s).as_deref() == Some("enable")).collect();
        match enables.as_slice() {
            [s] if s.received.unix_ns < ready_ns => problems.add(
                "recovery: enabled before readiness",
                format!("{leaf}: Set at {} ns, ready at {ready_ns} ns", s.received.unix_ns),
            ),
            [s] => out.push((s.received.unix_ns - ready_ns) as u64),
            other => problems.add("recovery: not exactly one enable Set", format!("{leaf}: {}", other.len())),
        }
    }
    Ok(out)
}

pub struct Storm {
    /// First to last link-down `applied` (every uplink of every leaf).
    pub injected_in: Duration,
    /// First link-down applied to the last Set received.
    pub all_sets_in: Option<Duration>,
    /// Per leaf: its Set's receive time minus its second uplink's `applied`.
    pub per_leaf_ns: Vec<u64>,
    pub sets: usize,
}

/// Storm: every leaf loses both uplinks at once (`conns` keep-alive connections in
/// parallel, released together, both uplinks of `batch` leaves per request). Waits until
/// every leaf got its disable Set, then watches a quiet window for duplicates: exactly one
/// Set per leaf is the correctness condition. Batches, because every leaf at once is a spine
/// pair failing, and 20,000 HTTP round trips (the bench's and the sims' CPU, on the cores the
/// controller runs on) made the injection, not the controller, the storm's floor (2.7–3.2 s
/// of a 3.2–4.0 s storm at 10,000 leaves).
pub async fn storm(
    fleet: &Fleet,
    leaves: &[String],
    (conns, batch): (usize, usize),
    expect: Expect,
    quiet: Duration,
    problems: &mut Problems,
) -> Result<Storm, String> {
    let mut c = fleet.client();
    c.clear_sets().await?;
    // Open every connection before the barrier so the storm is not a connect storm.
    let barrier = Arc::new(Barrier::new(conns));
    let mut tasks = Vec::new();
    for k in 0..conns {
        let mine: Vec<String> = leaves.iter().skip(k).step_by(conns).cloned().collect();
        let mut conn = fleet.client();
        conn.warm().await?;
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut applied = Vec::with_capacity(mine.len());
            for chunk in mine.chunks(batch) {
                let links: Vec<_> = chunk.iter().flat_map(|l| UPLINKS.map(|u| (l.as_str(), u, false))).collect();
                let moments = conn.links(&links).await?;
                for (leaf, both) in chunk.iter().zip(moments.chunks(UPLINKS.len())) {
                    applied.push((leaf.clone(), both[0], both[1]));
                }
            }
            Ok::<_, String>(applied)
        }));
    }
    let mut triggers = BTreeMap::new();
    let (mut first, mut last) = (i64::MAX, 0i64);
    // Across sims only the unix-ns clocks compare (each sim's monotonic clock starts at its start).
    for t in tasks {
        for (leaf, a, b) in t.await.map_err(|e| format!("storm task: {e}"))?? {
            first = first.min(a.unix_ns);
            last = last.max(b.unix_ns);
            triggers.insert(leaf, b);
        }
    }
    let deadline = Duration::from_secs(10) + Duration::from_millis(10 * leaves.len() as u64);
    let t0 = std::time::Instant::now();
    // The count, not the log: the sims serializing up to 10,000 records every 50 ms was
    // ~3 % of the storm's perf samples, on the two cores the storm runs on.
    let expected = match expect {
        Expect::EveryLeaf => leaves.len(),
        Expect::OnePerPair => leaves.len() / 2,
    };
    while c.sets_count().await? < expected && t0.elapsed() <= deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Sets that arrive after every leaf had one would be duplicates: look for them.
    tokio::time::sleep(quiet).await;
    let log = c.sets().await?;
    let mut per_node: BTreeMap<&str, Vec<&SetRecord>> = BTreeMap::new();
    for s in &log {
        per_node.entry(&s.node).or_default().push(s);
    }
    let mut per_leaf_ns = Vec::new();
    let mut last_set = 0i64;
    let disabled = |leaf: &str| match per_node.get(leaf).map(Vec::as_slice).unwrap_or_default() {
        [s] if downlink_value(s).as_deref() == Some("disable") && s.outcome == SetOutcome::Accepted => Ok(Some(*s)),
        [s] => Err(format!("wrong Set: {:?} {:?}", downlink_value(s), s.outcome)),
        [] => Ok(None),
        more => Err(format!("{} Sets", more.len())),
    };
    let mut took = |leaf: &String, s: &SetRecord| {
        per_leaf_ns.push(s.received.unix_ns.saturating_sub(triggers[leaf].unix_ns).max(0) as u64);
        last_set = last_set.max(s.received.unix_ns);
    };
    match expect {
        Expect::EveryLeaf => {
            for leaf in leaves {
                match disabled(leaf) {
                    Ok(Some(s)) => took(leaf, s),
                    Ok(None) => problems.add("storm: leaf got no Set", leaf.clone()),
                    Err(e) => problems.add("storm: leaf got other than one disable", format!("{leaf}: {e}")),
                }
            }
        }
        Expect::OnePerPair => {
            for pair in leaves.chunks_exact(2) {
                match (disabled(&pair[0]), disabled(&pair[1])) {
                    (Ok(Some(s)), Ok(None)) => took(&pair[0], s),
                    (Ok(None), Ok(Some(s))) => took(&pair[1], s),
                    (a, b) => problems.add(
                        "storm: a pair did not get exactly one disable",
                        format!("{}: {a:?}, {}: {b:?}", pair[0], pair[1]),
                    ),
                }
            }
        }
    }
    let complete = per_leaf_ns.len() == expected;
    let span = |a: i64, b: i64| Duration::from_nanos(b.saturating_sub(a).max(0) as u64);
    Ok(Storm {
        injected_in: span(first, last),
        all_sets_in: complete.then(|| span(first, last_set)),
        per_leaf_ns,
        sets: log.len(),
    })
}

/// Which disables the storm expects.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Expect {
    /// One for every leaf.
    EveryLeaf,
    /// With an Ethernet Segment on each two leaves in order: exactly one of each pair (both
    /// fail, and the other keeps the client's links).
    OnePerPair,
}

/// GETs one path back to back on one keep-alive connection until stopped.
pub struct Scraper {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(usize, usize, Duration), String>>,
    path: &'static str,
}

impl Scraper {
    pub fn start(addr: &str, path: &'static str) -> Scraper {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let mut conn = Conn::new(addr.to_string());
        let task = tokio::spawn(async move {
            let (mut n, mut bytes, mut longest) = (0, 0, Duration::ZERO);
            while stopped.try_recv().is_err() {
                let t = std::time::Instant::now();
                let r = conn.get(path).await?;
                if r.status != 200 {
                    return Err(format!("GET {path}: HTTP {}", r.status));
                }
                longest = longest.max(t.elapsed());
                n += 1;
                bytes = r.body.len();
            }
            Ok((n, bytes, longest))
        });
        Scraper { stop, task, path }
    }

    /// Stops, and says how many scrapes ran (a run with none proves nothing).
    pub async fn stop(self) -> Result<String, String> {
        let _ = self.stop.send(());
        let (n, bytes, longest) = self.task.await.map_err(|e| format!("scraper: {e}"))??;
        if n == 0 {
            return Err(format!("no GET {} completed during the reaction events", self.path));
        }
        Ok(format!("while {n} GET {} ran ({:.1} MB each, longest {longest:?})", self.path, bytes as f64 / 1e6))
    }
}
