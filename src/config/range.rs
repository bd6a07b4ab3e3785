//! Interface name patterns with ranges, as the SR Linux event handler writes them:
//! `ethernet-1/{49..50}`, lists `ethernet-1/{1,3,5}`, mixes `ethernet-1/{1..3,7}` and
//! several groups in one name `ethernet-{1..2}/{1..2}` (every combination, in order).

/// More names than this from one pattern is a typo, not a fabric.
pub const MAX_EXPANSION: usize = 1024;

/// Expand one pattern into interface names, in the order written.
pub fn expand(pattern: &str) -> Result<Vec<String>, String> {
    if pattern.is_empty() {
        return Err("empty interface name".into());
    }
    let mut names = vec![String::new()];
    let mut rest = pattern;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            None => {
                names.iter_mut().for_each(|n| n.push_str(rest));
                rest = "";
            }
            Some(i) if rest.as_bytes()[i] == b'}' => {
                return Err(format!("unbalanced '}}' in interface pattern {pattern:?}"));
            }
            Some(open) => {
                let literal = &rest[..open];
                let after = &rest[open + 1..];
                let close = after
                    .find(['{', '}'])
                    .filter(|&c| after.as_bytes()[c] == b'}')
                    .ok_or_else(|| format!("unclosed or nested '{{' in interface pattern {pattern:?}"))?;
                let items = alternatives(&after[..close], pattern)?;
                let count = names.len().saturating_mul(items.len());
                if count > MAX_EXPANSION {
                    return Err(format!("interface pattern {pattern:?} expands to more than {MAX_EXPANSION} names"));
                }
                let mut next = Vec::with_capacity(count);
                for name in &names {
                    for item in &items {
                        next.push(format!("{name}{literal}{item}"));
                    }
                }
                names = next;
                rest = &after[close + 1..];
            }
        }
    }
    for name in &names {
        check_name(name).map_err(|e| format!("{e} (from pattern {pattern:?})"))?;
    }
    Ok(names)
}

/// The comma-separated items inside one `{...}`: plain words or numeric ranges `a..b`.
fn alternatives(inside: &str, pattern: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for item in inside.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(format!("empty item in '{{{inside}}}' of interface pattern {pattern:?}"));
        }
        match item.split_once("..") {
            None => out.push(item.to_string()),
            Some((lo, hi)) => {
                let bound = |b: &str| {
                    b.trim().parse::<u64>().map_err(|_| {
                        format!("range '{item}' in interface pattern {pattern:?} needs two non-negative integers")
                    })
                };
                let (lo, hi) = (bound(lo)?, bound(hi)?);
                if lo > hi {
                    return Err(format!("reversed range '{item}' in interface pattern {pattern:?}; write {hi}..{lo}"));
                }
                if hi - lo >= MAX_EXPANSION as u64 {
                    return Err(format!(
                        "range '{item}' in interface pattern {pattern:?} has more than {MAX_EXPANSION} values"
                    ));
                }
                out.extend((lo..=hi).map(|n| n.to_string()));
            }
        }
        if out.len() > MAX_EXPANSION {
            return Err(format!("interface pattern {pattern:?} expands to more than {MAX_EXPANSION} names"));
        }
    }
    Ok(out)
}

/// Names end up as list keys in gNMI paths (`/interface[name=X]`): keep them plain.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty interface name".into());
    }
    if let Some(c) = name.chars().find(|c| c.is_whitespace() || c.is_control() || "[]=*\"'\\".contains(*c)) {
        return Err(format!("interface name {name:?} contains {c:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: &str) -> Vec<String> {
        expand(p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    #[test]
    fn plain_names_pass_through() {
        assert_eq!(ok("ethernet-1/1"), ["ethernet-1/1"]);
        assert_eq!(ok("lag1"), ["lag1"]);
    }

    #[test]
    fn expands_ranges_lists_and_products() {
        assert_eq!(ok("ethernet-1/{49..50}"), ["ethernet-1/49", "ethernet-1/50"]);
        assert_eq!(ok("ethernet-1/{1,3,5}"), ["ethernet-1/1", "ethernet-1/3", "ethernet-1/5"]);
        assert_eq!(ok("ethernet-1/{1..3,7}"), ["ethernet-1/1", "ethernet-1/2", "ethernet-1/3", "ethernet-1/7"]);
        assert_eq!(ok("ethernet-{1..2}/{1..2}"), ["ethernet-1/1", "ethernet-1/2", "ethernet-2/1", "ethernet-2/2"]);
        assert_eq!(ok("ethernet-1/{5..5}"), ["ethernet-1/5"]);
        assert_eq!(ok("{lag1,lag2}"), ["lag1", "lag2"]);
    }

    #[test]
    fn expands_other_vendors_interface_names() {
        // Arista EOS breakouts, Junos, IOS XR: the range may sit before a '/' or after several.
        assert_eq!(ok("Ethernet{49..50}/1"), ["Ethernet49/1", "Ethernet50/1"]);
        assert_eq!(ok("Ethernet{1..2}"), ["Ethernet1", "Ethernet2"]);
        assert_eq!(ok("et-0/0/{48..49}"), ["et-0/0/48", "et-0/0/49"]);
        assert_eq!(ok("HundredGigE0/0/0/{1..2}"), ["HundredGigE0/0/0/1", "HundredGigE0/0/0/2"]);
        assert_eq!(ok("Ethernet49/{1..4}"), ["Ethernet49/1", "Ethernet49/2", "Ethernet49/3", "Ethernet49/4"]);
    }

    #[test]
    fn rejects_bad_patterns() {
        for (bad, needle) in [
            ("", "empty"),
            ("ethernet-1/{50..49}", "reversed"),
            ("ethernet-1/{a..b}", "integers"),
            ("ethernet-1/{1..}", "integers"),
            ("ethernet-1/{49..50", "unclosed"),
            ("ethernet-1/49..50}", "unbalanced"),
            ("ethernet-1/{{1..2}}", "nested"),
            ("ethernet-1/{}", "empty item"),
            ("ethernet-1/{1,,2}", "empty item"),
            ("ethernet-1/{1..100000}", "more than"),
            ("ethernet-{1..100}/{1..100}", "more than"),
            ("ethernet-1/{0..18446744073709551615}", "more than"),
            ("ethernet 1/1", "contains"),
            ("ethernet-1/1]", "contains"),
        ] {
            let err = expand(bad).expect_err(bad);
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }
}
