//! Policy tests as data. Every `tests/policy/*.yaml` is one case: a config (the YAML
//! `opergroupd` itself parses: targets, groups, segments, safety), a timeline of steps,
//! and after a step the verdict and Set expected per group. One harness runs them all
//! through the pure API — `policy::evaluate`, `policy::intent`, `safety::holds` over a
//! `state::State` — with the clock in its hands: no runtime, no sleeping.
//!
//! `BLESS=1 cargo nextest run -p opergroupd --test policy` rewrites the expectations in the
//! files with what the policy now decides, for review in `git diff`, instead of asserting.
//!
//! # A case file
//! ```yaml
//! config: |              # parsed by config::parse, as `opergroupd check` would
//!   targets: { leaf1: { address: "127.0.0.1:57401", tls: { insecure: true } } }
//!   groups: { leaf1-es1: { target: leaf1, uplinks: [e1], downlinks: [e2], down-delay: 3s } }
//! apply-sets: false      # true: the device applies every Set not held, before the next step
//! steps:
//!   - oper: { e1: up }     # observations arrive as one notification
//!     admin: { e2: enable }
//!     sync: true
//!     expect:
//!       leaf1-es1: {health: healthy, desired: enable, set: []}
//!   - advance: 2s          # the clock moves first, then the step's observations
//!     oper: { e1: down }
//!     expect:
//!       leaf1-es1: {desired: hold, pending: disable, wake-in: 3s}
//! ```
//! A step, in this order: `advance` (a duration), `stale` (the stream error: the target
//! goes stale), observations, `sync: true`; then every group is evaluated (as the
//! controller does on every event), the safety stage judges the disables, and `expect` is
//! checked. `target` names the step's target; it may be left out when the config has one.
//!
//! Observations, by interface or neighbor through the target's profile (so one timeline
//! reads the same for SR Linux and OpenConfig): `oper`, `admin` (the observed admin
//! state), `session` and `routes` (per BGP neighbor, in the network instance and protocol
//! of the target's first group with readiness); `paths` takes canonical paths as they are.
//! A value of `~` deletes the leaf; `delete-neighbor: [peer]` deletes a neighbor's container.
//!
//! Expectations, per group, as a one-line or multi-line flow mapping; only the fields given
//! are checked: `health`, `desired` (enable, disable, hold), `pending` (none, enable,
//! disable), `wake-in` (a duration, or none), `uplinks` (`1/2`), `established` and
//! `evpn-routes` (a number, or none), `timers` (the running timers and their age, `unhealthy
//! 2s`, or none), `reason` (exact) and `reason-has` (a part of it), `set` (the Set
//! `policy::intent` makes: `path=value` as sent, `[]` for none), `held` (the safety stage's
//! reason, or none) and `held-has`. An empty mapping `{}` is filled with every field on
//! BLESS; BLESS keeps the fields a case chose, and a `-has` field that still matches.
//! Comments inside an expectation's braces are lost on BLESS: put them above it.
//!
//! With `apply-sets: false` nothing applies a Set: the device reports only what the steps
//! say, as in the unit tests this replaced. The safety stage sees each enforcing group
//! through `safety::Member::of`. Either way the harness counts a group as
//! disabled by the controller the way the controller does (`controller/evaluate.rs`,
//! `dispatch.rs`), for the blast-radius cap: from the moment its disable is sent, for as
//! long as the device reports all its downlinks disabled.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use opergroupd::config::{self, Config, Group, duration};
use opergroupd::model::{AdminState, Scalar, SetIntent, SourceEvent};
use opergroupd::policy::{self, GroupMemory, Verdict};
use opergroupd::safety::{self, Member, Rules};
use opergroupd::state::{State, TargetView};
use serde::Deserialize;
use serde_saphyr::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Case {
    config: String,
    #[serde(default)]
    apply_sets: bool,
    steps: Vec<Spanned<Step>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Step {
    target: Option<String>,
    advance: Option<String>,
    stale: Option<String>,
    #[serde(default)]
    oper: Observed,
    #[serde(default)]
    admin: Observed,
    #[serde(default)]
    session: Observed,
    #[serde(default)]
    routes: Observed,
    #[serde(default)]
    paths: Observed,
    #[serde(default)]
    delete_neighbor: Vec<String>,
    #[serde(default)]
    sync: bool,
    expect: Option<BTreeMap<String, Spanned<BTreeMap<String, Value>>>>,
}

/// Observed leaves by interface, neighbor or path; `~` deletes.
type Observed = BTreeMap<String, Option<Value>>;

/// A YAML value in a case: an observed leaf, or an expected field.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
enum Value {
    Bool(bool),
    Uint(u64),
    Text(String),
    List(Vec<String>),
}

impl Value {
    fn scalar(&self) -> Scalar {
        match self {
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Uint(n) => Scalar::Uint(*n),
            Value::Text(s) => Scalar::Str(s.clone()),
            Value::List(l) => Scalar::Str(l.join(",")),
        }
    }

    /// The value as the harness compares it: lists stay lists, scalars become text.
    fn normal(&self) -> Value {
        match self {
            Value::Bool(b) => Value::Text(b.to_string()),
            Value::Uint(n) => Value::Text(n.to_string()),
            v => v.clone(),
        }
    }

    fn yaml(&self) -> String {
        match self.normal() {
            Value::Text(s) => word(&s),
            Value::List(l) => format!("[{}]", l.iter().map(|s| word(s)).collect::<Vec<_>>().join(", ")),
            _ => unreachable!("normal() leaves text and lists"),
        }
    }
}

/// `s` as a YAML flow scalar: bare when that reads back as the same text, else quoted.
fn word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "/.-_".contains(c))
        && !["true", "false", "null", "yes", "no", "on", "off", "y", "n"].contains(&s.to_ascii_lowercase().as_str());
    if plain { s.to_string() } else { serde_json::to_string(s).expect("a string serializes") }
}

/// The fields an expectation may name, in the order BLESS writes them.
const FIELDS: [&str; 13] = [
    "health",
    "desired",
    "pending",
    "wake-in",
    "uplinks",
    "established",
    "evpn-routes",
    "timers",
    "reason",
    "reason-has",
    "set",
    "held",
    "held-has",
];

/// One group after one step, every field rendered.
struct Outcome {
    fields: BTreeMap<&'static str, Value>,
}

impl Outcome {
    fn new(group: &Group, v: &Verdict, intent: Option<&SetIntent>, held: Option<&str>, now: Instant) -> Self {
        let text = |s: &str| Value::Text(s.to_string());
        let or_none = |o: Option<String>| Value::Text(o.unwrap_or_else(|| "none".into()));
        let age = |since: Option<Instant>, name: &str| {
            since.map(|s| format!("{name} {}", duration::format(now.saturating_duration_since(s))))
        };
        let m = &v.memory;
        let timers =
            [age(m.unhealthy_since, "unhealthy"), age(m.ready_since, "ready"), age(m.not_ready_since, "not-ready")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>();
        let set = intent
            .map(|i| {
                i.changes
                    .iter()
                    .map(|(path, to)| match group.profile.admin_json(*to) {
                        serde_json::Value::String(s) => format!("{path}={s}"),
                        other => format!("{path}={other}"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let fields = BTreeMap::from([
            ("health", text(v.health.as_str())),
            ("desired", text(v.desired.map_or("hold", AdminState::as_str))),
            ("pending", or_none(v.pending.map(|p| p.as_str().to_string()))),
            ("wake-in", or_none(v.wake_at.map(|w| duration::format(w.saturating_duration_since(now))))),
            ("uplinks", Value::Text(format!("{}/{}", v.uplinks_up, v.uplinks_total))),
            ("established", or_none(v.established.map(|n| n.to_string()))),
            ("evpn-routes", or_none(v.evpn_routes.map(|n| n.to_string()))),
            ("timers", or_none((!timers.is_empty()).then(|| timers.join(", ")))),
            ("reason", text(&v.reason)),
            ("set", Value::List(set)),
            ("held", or_none(held.map(str::to_string))),
        ]);
        Outcome { fields }
    }

    /// What differs from `expected`, one line per field.
    fn differences(&self, expected: &BTreeMap<String, Value>) -> Vec<String> {
        let mut out = Vec::new();
        for (key, want) in expected {
            let got = match key.strip_suffix("-has") {
                Some(whole) => {
                    let got = &self.fields[whole];
                    let (Value::Text(got), Value::Text(part)) = (got, want.normal()) else {
                        out.push(format!("{key}: expects text"));
                        continue;
                    };
                    if !got.contains(&part) {
                        out.push(format!("{key}: expected a {whole} containing {part:?}, got {got:?}"));
                    }
                    continue;
                }
                None => &self.fields[key.as_str()],
            };
            if *got != want.normal() {
                out.push(format!("{key}: expected {}, got {}", want.yaml(), got.yaml()));
            }
        }
        out
    }

    /// The expectation rewritten with what happened: the fields `keep` names (every field
    /// when empty), a `-has` field kept while it still matches, else the whole value.
    fn bless(&self, keep: &BTreeMap<String, Value>) -> String {
        let mut chosen: Vec<(&str, Value)> = Vec::new();
        for key in FIELDS {
            let wanted = keep.is_empty() && !key.ends_with("-has") || keep.contains_key(key);
            match key.strip_suffix("-has") {
                Some(whole) if wanted => {
                    let part = keep[key].clone();
                    if self.differences(&BTreeMap::from([(key.to_string(), part.clone())])).is_empty() {
                        chosen.push((key, part));
                    } else if !keep.contains_key(whole) {
                        chosen.push((whole, self.fields[whole].clone()));
                    }
                }
                None if wanted => chosen.push((key, self.fields[key].clone())),
                _ => {}
            }
        }
        chosen.sort_by_key(|(k, _)| FIELDS.iter().position(|f| f == k));
        let body = chosen.iter().map(|(k, v)| format!("{k}: {}", v.yaml())).collect::<Vec<_>>().join(", ");
        format!("{{{body}}}")
    }
}

/// One group's memory across steps, as the controller keeps it.
#[derive(Default)]
struct Kept {
    memory: GroupMemory,
    disabled_by_us: bool,
}

/// A rewrite for BLESS: replace the flow mapping starting at (line, column) with `text`.
struct Rewrite {
    line: usize,
    column: usize,
    text: String,
}

/// What one case run found.
#[derive(Default)]
struct Report {
    /// Expectations that differ from what the policy decided: file, step, group, field.
    differences: Vec<String>,
    /// The case itself is broken (does not parse, names an unknown field, group or target).
    errors: Vec<String>,
    /// The rewrites BLESS makes (empty when every expectation holds as written).
    rewrites: Vec<Rewrite>,
}

impl Report {
    fn broken(message: String) -> Report {
        Report { errors: vec![message], ..Report::default() }
    }
}

/// Run one case: every step, every group, every expectation.
fn run(name: &str, text: &str) -> Report {
    let case: Case = match serde_saphyr::from_str(text) {
        Ok(c) => c,
        Err(e) => return Report::broken(format!("{name}: not a case: {e}")),
    };
    let config = match config::parse(&case.config, &format!("{name}: config")) {
        Ok(c) => c,
        Err(e) => return Report::broken(e.to_string()),
    };
    let rules = Rules::from_config(&config);
    let mut now = Instant::now();
    let mut state = State::new();
    let mut kept: BTreeMap<&str, Kept> = config.groups.keys().map(|g| (g.as_str(), Kept::default())).collect();
    let mut report = Report::default();

    for (i, step) in case.steps.iter().enumerate() {
        let at = |line: u64| format!("{name}: step {} (line {line})", i + 1);
        let step_line = step.defined.line();
        let step = &step.value;
        let target = match step_target(&config, step) {
            Ok(t) => t,
            Err(e) => return Report::broken(format!("{}: {e}", at(step_line))),
        };
        if let Some(advance) = &step.advance {
            match duration::parse(advance) {
                Ok(d) => now += d,
                Err(e) => return Report::broken(format!("{}: advance: {e}", at(step_line))),
            }
        }
        if let Some(error) = &step.stale {
            state.apply(&SourceEvent::Stale { target: target.as_str().into(), at: now, error: error.clone() });
        }
        let (updates, deletes) = observations(&config, &target, step);
        if !updates.is_empty() || !deletes.is_empty() {
            state.apply(&SourceEvent::Notification {
                target: target.as_str().into(),
                received: now,
                device_ns: 0,
                updates,
                deletes,
            });
        }
        if step.sync {
            state.apply(&SourceEvent::Synced { target: target.as_str().into(), at: now });
        }

        let decided = decide(&config, &rules, &state, &mut kept, now);
        for (group, (verdict, intent, held)) in &decided {
            let spec = &config.groups[*group];
            if let Some(i) = intent {
                // What every Set says about itself, whatever the case expects.
                assert_eq!((&*i.target, i.group.as_str()), (spec.target.as_str(), *group), "{}", at(step_line));
                assert_eq!(i.reason, verdict.reason, "{}: a Set carries its verdict's reason", at(step_line));
            }
            let Some(expect) = step.expect.as_ref().and_then(|e| e.get(*group)) else { continue };
            let outcome = Outcome::new(spec, verdict, intent.as_ref(), held.as_deref(), now);
            let line = expect.defined.line();
            if let Some(bad) = expect.value.keys().find(|k| !FIELDS.contains(&k.as_str())) {
                report.errors.push(format!(
                    "{}: {group}: unknown field {bad:?}; fields: {}",
                    at(line),
                    FIELDS.join(", ")
                ));
                continue;
            }
            let differences = outcome.differences(&expect.value);
            if !differences.is_empty() || expect.value.is_empty() {
                let (line, column) = (line as usize, expect.defined.column() as usize);
                report.rewrites.push(Rewrite { line, column, text: outcome.bless(&expect.value) });
            }
            for d in differences {
                report.differences.push(format!("{}: {group} {d} (reason: {:?})", at(line), verdict.reason));
            }
        }
        if let Some(names) = step.expect.as_ref() {
            for g in names.keys().filter(|g| !config.groups.contains_key(*g)) {
                report.errors.push(format!("{}: no group {g:?} in the config", at(step_line)));
            }
        }

        if case.apply_sets {
            let sent: Vec<(&Group, &SetIntent)> = decided
                .iter()
                .filter(|(_, (_, _, held))| held.is_none())
                .filter_map(|(g, (_, intent, _))| intent.as_ref().map(|i| (&config.groups[*g], i)))
                .collect();
            for (group, intent) in sent {
                let p = group.profile;
                let updates = group
                    .downlinks
                    .iter()
                    .filter_map(|d| {
                        let to = intent.changes.iter().find(|(path, _)| *path == p.admin_set(d))?.1;
                        Some((p.admin_observed(d), p.admin_scalar(to)))
                    })
                    .collect();
                state.apply(&SourceEvent::Notification {
                    target: group.target.as_str().into(),
                    received: now,
                    device_ns: 0,
                    updates,
                    deletes: Vec::new(),
                });
            }
        }
    }
    report
}

type Decision = (Verdict, Option<SetIntent>, Option<String>);

/// Every group evaluated, then the safety stage over the enforcing ones, as the controller
/// does after an event; the disables not held count as sent.
fn decide<'c>(
    config: &'c Config,
    rules: &Rules,
    state: &State,
    kept: &mut BTreeMap<&'c str, Kept>,
    now: Instant,
) -> BTreeMap<&'c str, Decision> {
    let mut decided = BTreeMap::new();
    for (name, group) in &config.groups {
        let view = state.target(&group.target);
        let k = kept.get_mut(name.as_str()).expect("every group is kept");
        let verdict = policy::evaluate(group, &view, &k.memory, now);
        k.memory = verdict.memory;
        let intent = policy::intent(group, &verdict, &view);
        if view.synced() {
            let all_disabled = group.downlinks.iter().all(|d| admin(group, &view, d) == Some(AdminState::Disable));
            k.disabled_by_us = all_disabled && (k.disabled_by_us || verdict.desired == Some(AdminState::Disable));
        }
        decided.insert(name.as_str(), (verdict, intent, None));
    }
    if !rules.is_empty() {
        let members: Vec<Member> = decided
            .iter()
            .filter(|(g, _)| config.groups[**g].enforce)
            .map(|(g, (verdict, intent, _))| {
                let group = &config.groups[*g];
                let view = state.target(&group.target);
                Member::of(group, &view, verdict.health, intent.as_ref(), kept[*g].disabled_by_us)
            })
            .collect();
        for (g, why) in safety::holds(rules, &members) {
            if let Some(d) = decided.get_mut(g.as_str()) {
                d.2 = Some(why);
            }
        }
    }
    for (g, (_, intent, held)) in &decided {
        if held.is_none() && intent.as_ref().is_some_and(wants_disable) {
            kept.get_mut(g).expect("every group is kept").disabled_by_us = true;
        }
    }
    decided
}

fn wants_disable(intent: &SetIntent) -> bool {
    intent.changes.iter().any(|(_, v)| *v == AdminState::Disable)
}

fn admin(group: &Group, view: &TargetView<'_>, downlink: &str) -> Option<AdminState> {
    let p = group.profile;
    view.get(&p.admin_observed(downlink)).and_then(|v| p.observed_admin(v))
}

fn step_target(config: &Config, step: &Step) -> Result<String, String> {
    match &step.target {
        Some(t) if config.targets.contains_key(t) => Ok(t.clone()),
        Some(t) => Err(format!("no target {t:?} in the config")),
        None if config.targets.len() == 1 => Ok(config.targets.keys().next().cloned().unwrap_or_default()),
        None => Err("several targets: name the step's target".into()),
    }
}

/// The step's observations as canonical (updates, deletes), through the target's profile.
fn observations(config: &Config, target: &str, step: &Step) -> (Vec<(String, Scalar)>, Vec<String>) {
    let groups: Vec<&Group> = config.groups.values().filter(|g| g.target == target).collect();
    let profile = groups.first().map_or(&opergroupd::profile::SRL, |g| g.profile);
    let (ni, proto) = groups
        .iter()
        .find_map(|g| g.readiness.as_ref())
        .map_or(("default", "BGP"), |r| (r.network_instance.as_str(), r.protocol_name.as_str()));
    let mut updates = Vec::new();
    let mut deletes: Vec<String> = step.delete_neighbor.iter().map(|n| profile.neighbor(ni, proto, n)).collect();
    let mut put = |path: String, value: &Option<Value>| match value {
        Some(v) => updates.push((path, v.scalar())),
        None => deletes.push(path),
    };
    step.oper.iter().for_each(|(i, v)| put(profile.oper_state(i), v));
    step.admin.iter().for_each(|(i, v)| put(profile.admin_observed(i), v));
    step.session.iter().for_each(|(n, v)| put(profile.session_state(ni, proto, n), v));
    step.routes.iter().for_each(|(n, v)| put(profile.evpn_received_routes(ni, proto, n), v));
    step.paths.iter().for_each(|(p, v)| put(p.clone(), v));
    (updates, deletes)
}

/// `text` with each rewrite's flow mapping (from its `{` to the matching `}`) replaced.
fn apply_rewrites(text: &str, rewrites: &[Rewrite]) -> String {
    let line_starts: Vec<usize> = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
    let mut spans: Vec<(usize, usize, &str)> = rewrites
        .iter()
        .map(|r| {
            let line = &text[line_starts[r.line - 1]..];
            let start = line_starts[r.line - 1] + line.char_indices().nth(r.column - 1).map_or(line.len(), |(i, _)| i);
            (start, start + flow_end(&text[start..]), r.text.as_str())
        })
        .collect();
    spans.sort_by_key(|s| std::cmp::Reverse(s.0));
    let mut out = text.to_string();
    for (start, end, new) in spans {
        out.replace_range(start..end, new);
    }
    out
}

/// The length of the flow mapping `text` starts with, through its closing brace.
fn flow_end(text: &str) -> usize {
    let (mut depth, mut quote, mut escaped) = (0usize, None::<char>, false);
    for (i, c) in text.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                '{' | '[' => depth += 1,
                '}' | ']' => {
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            },
        }
    }
    panic!("an expectation is a flow mapping: {{...}}");
}

fn case_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/policy");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_case_file() {
    let bless = std::env::var_os("BLESS").is_some_and(|v| v == "1");
    let files = case_files();
    assert!(files.len() >= 10, "the policy cases are missing: {files:?}");
    let mut failures = Vec::new();
    for file in &files {
        let name = file.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(file).display().to_string();
        let name = name.trim_start_matches('/');
        let text = std::fs::read_to_string(file).expect("a readable case");
        let report = run(name, &text);
        failures.extend(report.errors);
        if bless {
            if !report.rewrites.is_empty() {
                std::fs::write(file, apply_rewrites(&text, &report.rewrites)).expect("the case file is writable");
                eprintln!("blessed {name}: {} expectation(s) rewritten", report.rewrites.len());
            }
        } else {
            failures.extend(report.differences);
        }
    }
    assert!(failures.is_empty(), "{} policy case failure(s):\n{}", failures.len(), failures.join("\n"));
}

const INLINE: &str = r#"
config: |
  targets: { leaf1: { address: "127.0.0.1:57401", tls: { insecure: true } } }
  groups:
    leaf1-es1: { target: leaf1, uplinks: [ethernet-1/49], downlinks: [ethernet-1/1] }
steps:
  - oper: { ethernet-1/49: up }
    admin: { ethernet-1/1: enable }
    sync: true
    expect:
      leaf1-es1: {health: healthy, desired: enable}
  - oper: { ethernet-1/49: down }
    expect:
      # Wrong on purpose: the uplink is down.
      leaf1-es1: {desired: enable, reason-has: "0/1 uplinks up"}
"#;

#[test]
fn a_wrong_expectation_names_the_file_the_step_and_what_differed() {
    let report = run("inline.yaml", INLINE);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.differences.len(), 1, "{:?}", report.differences);
    let f = &report.differences[0];
    assert!(f.starts_with("inline.yaml: step 2 (line 15): leaf1-es1 desired:"), "{f}");
    assert!(f.contains("expected enable, got disable"), "{f}");
}

#[test]
fn bless_rewrites_what_differs_and_keeps_the_rest() {
    let rewrites = run("inline.yaml", INLINE).rewrites;
    assert_eq!(rewrites.len(), 1, "only the wrong expectation is rewritten");
    let blessed = apply_rewrites(INLINE, &rewrites);
    assert!(blessed.contains("leaf1-es1: {desired: disable, reason-has: \"0/1 uplinks up\"}"), "{blessed}");
    assert!(blessed.contains("# Wrong on purpose"), "comments stay: {blessed}");
    let again = run("inline.yaml", &blessed);
    assert!(again.differences.is_empty() && again.errors.is_empty() && again.rewrites.is_empty(), "{blessed}");
    // An empty expectation is filled in full.
    let empty = INLINE.replace("{desired: enable, reason-has: \"0/1 uplinks up\"}", "{}");
    let full = apply_rewrites(&empty, &run("inline.yaml", &empty).rewrites);
    assert!(
        full.contains(
            "leaf1-es1: {health: unhealthy, desired: disable, pending: none, wake-in: none, uplinks: 0/1, \
             established: none, evpn-routes: none, timers: \"unhealthy 0s\", reason: \"0/1 uplinks up, required 1\", \
             set: [\"/interface[name=ethernet-1/1]/admin-state=disable\"], held: none}"
        ),
        "{full}"
    );
}

#[test]
fn a_broken_case_is_an_error_not_a_pass() {
    let typo = INLINE.replace("desired: enable}", "desird: enable}");
    let failures = run("inline.yaml", &typo).errors;
    assert!(failures.iter().any(|f| f.contains("unknown field \"desird\"")), "{failures:?}");
    let no_group = INLINE.replace("      leaf1-es1: {health", "      leaf9: {health");
    let failures = run("inline.yaml", &no_group).errors;
    assert!(failures.iter().any(|f| f.contains("no group \"leaf9\"")), "{failures:?}");
}

#[test]
fn quoted_values_stay_strings() {
    // `routes: { 10.0.1.1: "3" }` is a counter64 sent as a string, `admin: { Ethernet1: "false" }`
    // a boolean sent as one: the cases rely on quotes keeping the text.
    let v: BTreeMap<String, Value> = serde_saphyr::from_str("a: \"3\"\nb: 3\nc: true\nd: \"false\"\ne: up\n").unwrap();
    assert_eq!(v["a"].scalar(), Scalar::Str("3".into()));
    assert_eq!(v["b"].scalar(), Scalar::Uint(3));
    assert_eq!(v["c"].scalar(), Scalar::Bool(true));
    assert_eq!(v["d"].scalar(), Scalar::Str("false".into()));
    assert_eq!(v["e"].scalar(), Scalar::Str("up".into()));
}
