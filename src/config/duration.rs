//! Humane durations: `0s`, `250ms`, `3s`, `1m`, `1m30s`, `1h`.

use std::time::Duration;

/// The longest delay accepted. Delays are added to `Instant`s; a bound keeps that
/// arithmetic far from overflow and catches typos like `30000m`.
pub const MAX: Duration = Duration::from_secs(24 * 3600);

/// Parse a humane duration: one or more `<digits><unit>` parts, units `h`, `m`, `s`, `ms`,
/// each at most once and from largest to smallest (`1m30s`).
pub fn parse(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration; write e.g. 0s, 250ms, 3s, 1m".into());
    }
    let mut rest = s;
    let mut total = Duration::ZERO;
    let mut last_rank = usize::MAX;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("invalid duration {s:?}: expected a number; write e.g. 0s, 250ms, 3s, 1m"));
        }
        let number: u64 = rest[..digits].parse().map_err(|_| format!("invalid duration {s:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        // rank orders units from largest (0) to smallest.
        let (rank, part) = match unit {
            "h" => (0, number.checked_mul(3600).map(Duration::from_secs)),
            "m" => (1, number.checked_mul(60).map(Duration::from_secs)),
            "s" => (2, Some(Duration::from_secs(number))),
            "ms" => (3, Some(Duration::from_millis(number))),
            "" => {
                return Err(format!("invalid duration {s:?}: missing unit (h, m, s or ms), e.g. {number}s"));
            }
            other => {
                return Err(format!("invalid duration {s:?}: unknown unit {other:?}; use h, m, s or ms"));
            }
        };
        if last_rank != usize::MAX && rank <= last_rank {
            return Err(format!(
                "invalid duration {s:?}: units must go from largest to smallest, each once (e.g. 1m30s)"
            ));
        }
        last_rank = rank;
        total = part
            .and_then(|p| total.checked_add(p))
            .filter(|t| *t <= MAX)
            .ok_or_else(|| format!("invalid duration {s:?}: longer than the maximum of 24h"))?;
    }
    Ok(total)
}

/// Format a duration the way the config writes it (`1m30s`, `250ms`, `0s`).
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let (h, m, s, ms) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let mut out = String::new();
    for (value, unit) in [(h, "h"), (m, "m"), (s, "s"), (ms, "ms")] {
        if value > 0 {
            out.push_str(&format!("{value}{unit}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_humane_durations() {
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1h2m3s4ms"), Ok(Duration::from_millis(3_723_004)));
        assert_eq!(parse(" 5s "), Ok(Duration::from_secs(5)));
    }

    #[test]
    fn rejects_bad_durations() {
        for bad in ["", "3", "3x", "s", "1.5s", "-1s", "30s1m", "1s1s", "25h", "99999999999999999999s", "3 s"] {
            let err = parse(bad).expect_err(bad);
            assert!(err.contains("duration"), "{bad}: {err}");
        }
        assert!(parse("3").unwrap_err().contains("missing unit"));
    }

    #[test]
    fn formats_round_trip() {
        for text in ["0s", "250ms", "3s", "1m", "1m30s", "1h2m3s4ms"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
