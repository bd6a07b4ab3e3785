use super::*;

fn raw(yaml: &str) -> Result<RawService, String> {
    serde_saphyr::from_str(yaml).map_err(|e| e.to_string())
}

fn svc(yaml: &str) -> Result<Service, String> {
    resolve("web", &raw(yaml)?, &["leaf1-es1"])
}

#[test]
fn defaults_follow_exabgp_healthcheck() {
    let s = svc("prefix: 192.0.2.1/32\nchecks: [{tcp: '127.0.0.1:80'}]").unwrap();
    assert_eq!(s.next_hop, NextHop::SelfAddress);
    assert_eq!((s.interval, s.fast_interval, s.timeout), (DEFAULT_INTERVAL, DEFAULT_FAST_INTERVAL, DEFAULT_TIMEOUT));
    assert_eq!((s.rise, s.fall), (3, 3));
    assert_eq!(s.down, Fallback::Withdraw);
    assert_eq!(s.disabled, Fallback::Withdraw);
    assert_eq!(s.checks, vec![Check::Tcp { address: HostPort { host: "127.0.0.1".into(), port: 80 } }]);
}

#[test]
fn full_service_resolves() {
    let s = svc(r#"
prefix: 2001:db8::/64
next-hop: 2001:db8:1::1
med: 100
local-preference: 200
communities: ["65000:1", "65000:1:2"]
as-path: [65001]
checks:
  - http: http://[::1]:8080/health?deep=1
    status: 204
  - exec: "test -e /tmp/ok"
    exit-code: 1
interval: 2s
fast-interval: 250ms
timeout: 1s
rise: 2
fall: 1
down-mode: degraded
degraded: { med: 1000, as-path-prepend: [65001, 65001], communities: ["65000:666"] }
group: leaf1-es1
disable-file: /run/web.disabled
on-disabled: announce
"#)
    .unwrap();
    assert_eq!(s.prefix.to_string(), "2001:db8::/64");
    assert_eq!(s.fast_interval, Duration::from_millis(250));
    assert_eq!(
        s.checks[0],
        Check::Http {
            url: HttpUrl { host: HostPort { host: "::1".into(), port: 8080 }, path: "/health?deep=1".into() },
            status: 204
        }
    );
    assert_eq!(s.checks[1], Check::Exec { command: "test -e /tmp/ok".into(), exit_code: 1 });
    let Fallback::Announce(d) = &s.down else { panic!("degraded expected") };
    assert_eq!(d.med, Some(1000));
    assert_eq!(d.as_path, vec![65001, 65001, 65001]);
    assert_eq!(d.communities.len(), 3);
    let Fallback::Announce(dis) = &s.disabled else { panic!("announce expected") };
    assert_eq!(dis.med, Some(DEFAULT_DISABLED_MED));
    assert_eq!(dis.local_preference, Some(200));
}

#[test]
fn scalar_errors_carry_line_and_column() {
    let e = raw("prefix: 192.0.2.1/32\nchecks:\n  - tcp: nope\n").unwrap_err();
    assert!(e.contains("not host:port"), "{e}");
    assert!(e.contains("line 3"), "{e}");
    let e = raw("prefix: 192.0.2.1/24\n").unwrap_err();
    assert!(e.contains("host bits") && e.contains("line 1"), "{e}");
    let e = raw("prefix: 192.0.2.1/32\nintervall: 1s\n").unwrap_err();
    assert!(e.contains("intervall") && e.contains("line 2"), "{e}");
}

#[test]
fn bad_values_are_named() {
    let cases = [
        ("prefix: 192.0.2.1/33", "prefix length"),
        ("prefix: 192.0.2.1/32\nnext-hop: 2001:db8::1", "different address families"),
        ("prefix: 192.0.2.1/32\nnext-hop: me", "neither `self`"),
        ("prefix: 192.0.2.1/32\ncommunities: ['70000:1']", "community `70000:1`"),
        ("prefix: 192.0.2.1/32\ninterval: 5", "missing unit"),
        ("prefix: 192.0.2.1/32\ninterval: 0s", "interval: must be more than 0s"),
        ("prefix: 192.0.2.1/32\ninterval: 1s\nfast-interval: 2s", "fast-interval"),
        ("prefix: 192.0.2.1/32\nrise: 0", "rise: must be at least 1"),
        ("prefix: 192.0.2.1/32\nchecks: [{tcp: 'a:1', http: 'http://a/'}]", "exactly one of"),
        ("prefix: 192.0.2.1/32\nchecks: [{http: 'https://a/'}]", "https is not supported"),
        ("prefix: 192.0.2.1/32\nchecks: [{exec: 'true', status: 200}]", "takes `exit-code`"),
        ("prefix: 192.0.2.1/32\ndegraded: {med: 1000}", "down-mode is withdraw"),
        ("prefix: 192.0.2.1/32\nmed: 100\ndown-mode: degraded\ndegraded: {med: 50}", "not worse"),
        ("prefix: 192.0.2.1/32\ndisabled-med: 5", "on-disabled is withdraw"),
        ("prefix: 192.0.2.1/32\non-disabled: announce", "no disable-file"),
        ("prefix: 192.0.2.1/32\ngroup: nope", "`nope` is not a configured group"),
        ("prefix: 192.0.2.1/32\ndown-mode: sideways", "sideways"),
    ];
    for (yaml, want) in cases {
        let e = svc(yaml).unwrap_err();
        assert!(e.contains(want), "{yaml:?}: {e}");
    }
}

#[test]
fn degraded_without_block_uses_conventional_med() {
    let s = svc("prefix: 192.0.2.1/32\nmed: 100\ndown-mode: degraded").unwrap();
    let Fallback::Announce(d) = s.down else { panic!("degraded expected") };
    assert_eq!(d.med, Some(DEFAULT_DEGRADED_MED));
}

#[test]
fn durations_follow_the_configs_one_parser() {
    let s = svc("prefix: 192.0.2.1/32\ninterval: 1m30s\nfast-interval: 250ms").unwrap();
    assert_eq!((s.interval, s.fast_interval), (Duration::from_secs(90), Duration::from_millis(250)));
    // The same rules as every other duration in the file: units largest first, at most 24h,
    // and the error carries the line.
    for (bad, want) in [("30s1m", "largest to smallest"), ("25h", "maximum of 24h"), ("5", "missing unit")] {
        let e = raw(&format!("prefix: 192.0.2.1/32\ninterval: {bad}\n")).unwrap_err();
        assert!(e.contains(want) && e.contains("line 2"), "{bad}: {e}");
    }
}
