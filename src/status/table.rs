//! The status document as compact tables for people (`opergroupd status`).

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::document::*;

/// Render `doc`; `colour` adds ANSI colours to states (only on a terminal).
pub fn render(doc: &StatusDocument, colour: bool) -> String {
    let now = parse(&doc.generated_at);
    let ago = |t: &Option<String>| match t {
        Some(t) => relative(now, t),
        None => "-".to_string(),
    };
    let paint = |text: &str, tone: Tone| paint(text, tone, colour);
    let c = &doc.controller;
    let mut out = format!(
        "opergroupd {}  role {}  up {}{}{}\n",
        c.version,
        c.role.as_str(),
        human(Duration::from_millis(c.uptime_ms)),
        if c.dry_run { "  dry-run" } else { "" },
        if c.config_loaded { "" } else { "  config not loaded" },
    );
    if let Some(le) = &c.leader_election {
        out.push_str(&format!(
            "lease {}  holder {}  this replica {} since {}\n",
            le.lease,
            le.holder.as_deref().unwrap_or("-"),
            le.identity,
            ago(&Some(le.role_since.clone()))
        ));
    }
    let m = &c.maintenance;
    match m.suspends.as_str() {
        "none" => {}
        "all" => out.push_str(&format!(
            "{}\n",
            paint(&format!("maintenance: override file {} suspends ALL groups", file(m)), Tone::Warn)
        )),
        _ => out.push_str(&format!(
            "{}\n",
            paint(&format!("maintenance: override file {} suspends {}", file(m), m.groups.join(", ")), Tone::Warn)
        )),
    }

    out.push('\n');
    let mut rows =
        vec![row(&["GROUP", "TARGET", "STATE", "ENFORCEMENT", "DOWNLINKS desired/observed", "PENDING", "REASON"])];
    let mut details = Vec::new();
    for g in &doc.groups {
        let downlinks = g
            .downlinks
            .iter()
            .map(|d| format!("{} {}/{}", d.name, opt(&d.desired), opt(&d.observed)))
            .collect::<Vec<_>>()
            .join(", ");
        let pending = g.pending.as_ref().map_or("-".to_string(), |p| {
            format!("{} in {}", p.action, human(Duration::from_millis(p.fires_in_ms.max(0) as u64)))
        });
        rows.push(vec![
            Cell::plain(&g.name),
            Cell::plain(&g.target),
            Cell::toned(g.oper_state.as_str(), health_tone(g.oper_state)),
            Cell::toned(
                g.enforcement.describe(),
                if g.enforcement == Enforcement::Enforcing { Tone::Plain } else { Tone::Warn },
            ),
            Cell::plain(if downlinks.is_empty() { "-" } else { &downlinks }),
            Cell::plain(&pending),
            Cell::plain(&g.reason),
        ]);
        let s = &g.statistics;
        let last = match &s.last_decision_at {
            Some(_) => format!(" (last {})", ago(&s.last_decision_at)),
            None => String::new(),
        };
        let mut line = format!(
            "  {}: {} evaluations, {} decisions{last}, {} sets, {} failed, {} retries",
            g.name, s.evaluations, s.decisions, s.sets_sent, s.sets_failed, s.retries
        );
        if let Some(ms) = s.last_decision_to_set_ms {
            line.push_str(&format!(", decision-to-set {ms:.1} ms"));
        }
        details.push(line);
        if let Some(o) = &g.last_output {
            let tone = match o.result.as_str() {
                "ok" | "dry-run" => Tone::Good,
                "failed" => Tone::Bad,
                _ => Tone::Warn,
            };
            let mut line = format!(
                "    last output {}: {} -> {}",
                ago(&Some(o.started_at.clone())),
                o.line,
                paint(&o.result, tone)
            );
            if let Some(ms) = o.latency_ms {
                line.push_str(&format!(" in {ms:.1} ms"));
            }
            if let Some(e) = &o.error {
                line.push_str(&format!(": {e}"));
            }
            details.push(line);
        }
    }
    out.push_str(&table(&rows, colour));
    for line in details {
        out.push_str(&line);
        out.push('\n');
    }

    out.push('\n');
    let mut rows = vec![row(&["TARGET", "STATE", "SINCE", "ENCODING", "RECONNECTS", "NOTIFICATIONS", "LAST ERROR"])];
    for t in &doc.targets {
        let error = match (&t.last_error, &t.last_error_at) {
            (Some(e), at) => format!("{e} ({})", ago(at)),
            (None, _) => "-".to_string(),
        };
        let state = if t.allow_absent && !t.ever_synced {
            format!("{} (may be absent)", t.state.as_str())
        } else {
            t.state.as_str().to_string()
        };
        rows.push(vec![
            Cell::plain(&t.name),
            Cell::toned(&state, conn_tone(t.state)),
            Cell::plain(&ago(&t.since)),
            Cell::plain(t.encoding.as_deref().unwrap_or("-")),
            Cell::plain(&t.reconnects.to_string()),
            Cell::plain(&t.notifications.to_string()),
            Cell::plain(&error),
        ]);
    }
    out.push_str(&table(&rows, colour));

    if !doc.services.is_empty() {
        out.push('\n');
        let mut rows = vec![row(&["SERVICE", "STATE", "LAST CHECK", "DETAIL"])];
        for s in &doc.services {
            rows.push(vec![
                Cell::plain(&s.name),
                Cell::toned(s.state.as_str(), service_tone(s.state)),
                Cell::plain(&ago(&s.last_check)),
                Cell::plain(s.detail.as_deref().unwrap_or("-")),
            ]);
        }
        out.push_str(&table(&rows, colour));
    }
    out
}

fn file(m: &MaintenanceStatus) -> &str {
    m.override_file.as_deref().unwrap_or("(unnamed)")
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("?")
}

#[derive(Clone, Copy, PartialEq)]
enum Tone {
    Plain,
    Good,
    Warn,
    Bad,
}

fn health_tone(h: Health) -> Tone {
    match h {
        Health::Healthy => Tone::Good,
        Health::Unhealthy | Health::Misconfigured => Tone::Bad,
        Health::NotReady | Health::Unknown => Tone::Warn,
    }
}

fn conn_tone(s: ConnState) -> Tone {
    match s {
        ConnState::Synced => Tone::Good,
        ConnState::Connecting => Tone::Warn,
        ConnState::Stale => Tone::Bad,
    }
}

fn service_tone(s: ServiceState) -> Tone {
    match s {
        ServiceState::Up => Tone::Good,
        ServiceState::Down => Tone::Bad,
        _ => Tone::Warn,
    }
}

fn paint(text: &str, tone: Tone, colour: bool) -> String {
    let code = match tone {
        Tone::Plain => return text.to_string(),
        Tone::Good => "32",
        Tone::Warn => "33",
        Tone::Bad => "31",
    };
    if colour { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
}

struct Cell {
    text: String,
    tone: Tone,
}

impl Cell {
    fn plain(text: &str) -> Cell {
        Cell { text: text.to_string(), tone: Tone::Plain }
    }
    fn toned(text: &str, tone: Tone) -> Cell {
        Cell { text: text.to_string(), tone }
    }
}

fn row(headers: &[&str]) -> Vec<Cell> {
    headers.iter().map(|h| Cell::plain(h)).collect()
}

/// Left-aligned columns two spaces apart; widths from the text, colour added after padding.
fn table(rows: &[Vec<Cell>], colour: bool) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..columns)
        .map(|i| rows.iter().filter_map(|r| r.get(i)).map(|c| c.text.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            let pad = if i + 1 == r.len() { 0 } else { width[i] - cell.text.chars().count() + 2 };
            line.push_str(&paint(&cell.text, cell.tone, colour));
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn parse(t: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(t, &Rfc3339).ok()
}

/// `t` relative to `now`: "4.2s ago", "in 3m12s"; the raw string if either will not parse.
fn relative(now: Option<OffsetDateTime>, t: &str) -> String {
    match (now, parse(t)) {
        (Some(now), Some(then)) => {
            let d = now - then;
            let abs = Duration::from_millis(d.whole_milliseconds().unsigned_abs() as u64);
            if d.is_negative() { format!("in {}", human(abs)) } else { format!("{} ago", human(abs)) }
        }
        _ => t.to_string(),
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        1..60 => format!("{:.1}s", d.as_secs_f64()),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_millis(4200)), "4.2s");
        assert_eq!(human(Duration::from_secs(192)), "3m12s");
        assert_eq!(human(Duration::from_secs(3 * 3600 + 5 * 60)), "3h05m");
        assert_eq!(human(Duration::from_secs(2 * 86400 + 4 * 3600)), "2d04h");
        let now = parse("2026-11-01T10:00:10Z");
        assert_eq!(relative(now, "2026-11-01T10:00:05.500Z"), "4.5s ago");
        assert_eq!(relative(now, "2026-11-01T10:01:10Z"), "in 1m00s");
        assert_eq!(relative(now, "yesterday"), "yesterday");
    }

    #[test]
    fn columns_align_and_colour_is_optional() {
        let rows = vec![row(&["A", "B"]), vec![Cell::toned("long-name", Tone::Bad), Cell::plain("x")]];
        assert_eq!(table(&rows, false), "A          B\nlong-name  x\n");
        assert_eq!(table(&rows, true), "A          B\n\x1b[31mlong-name\x1b[0m  x\n");
    }
}
