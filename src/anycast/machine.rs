//! The per-service health state machine, as pure functions (no I/O, no clock).
//!
//! Semantics follow ExaBGP's healthcheck (init, rising, up, falling, down, disabled) with
//! its weak spots fixed:
//! * a result is counted before it is compared, so `rise: 1` goes up on the first success
//!   (healthcheck needs one extra round);
//! * rising/falling keep whatever was last settled in place: a service that was up stays
//!   announced while it is falling, and a service just started announces nothing until it
//!   has settled once (`Desired::Undecided`, which the actuator leaves alone);
//! * the disable file wins from any state; when it goes away the service re-settles from
//!   rising/falling while the disabled treatment stays in place.

use std::time::Duration;

use crate::anycast::config::{Attributes, Fallback, NextHop, Prefix, Service};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Init,
    Rising,
    Up,
    Falling,
    Down,
    Disabled,
}

impl Phase {
    pub const ALL: [Phase; 6] = [Phase::Init, Phase::Rising, Phase::Up, Phase::Falling, Phase::Down, Phase::Disabled];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Init => "init",
            Phase::Rising => "rising",
            Phase::Up => "up",
            Phase::Falling => "falling",
            Phase::Down => "down",
            Phase::Disabled => "disabled",
        }
    }
}

/// The last stable verdict, which decides what is announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    Nothing,
    Up,
    Down,
    Disabled,
}

/// The state of one service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State {
    pub phase: Phase,
    /// Consecutive results in the current direction (rising/falling).
    pub count: u32,
    pub settled: Settled,
}

impl State {
    pub const INIT: State = State { phase: Phase::Init, count: 0, settled: Settled::Nothing };
}

/// One observation of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// The disable file exists (checks are not run).
    Disabled,
    /// All checks passed (`true`) or at least one failed (`false`).
    Checked(bool),
}

/// What should be in ExaBGP's RIB for a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Desired {
    /// Not settled yet: leave whatever is there alone.
    Undecided,
    Withdrawn,
    Announced(Route),
}

/// One route as sent to ExaBGP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub prefix: Prefix,
    pub next_hop: NextHop,
    pub attrs: Attributes,
}

/// The result of one step: the next state, what should be announced, and when to look again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub state: State,
    pub desired: Desired,
    pub next_check: Duration,
}

/// Advance `state` by one observation. `group_enabled` is the decision of the followed
/// oper-group, after its delays (`None`: no group, or no decision fed in yet).
pub fn step(state: State, input: Input, svc: &Service, group_enabled: Option<bool>) -> Step {
    let next = transition(state, input, svc.rise, svc.fall);
    Step { state: next, desired: desired(next, svc, group_enabled), next_check: next_check(next, svc) }
}

fn transition(s: State, input: Input, rise: u32, fall: u32) -> State {
    let healthy = match input {
        Input::Disabled => {
            return State { phase: Phase::Disabled, count: 0, settled: Settled::Disabled };
        }
        Input::Checked(ok) => ok,
    };
    let count = match (s.phase, healthy) {
        (Phase::Rising, true) | (Phase::Falling, false) => s.count.saturating_add(1),
        (Phase::Up, true) | (Phase::Down, false) => return s,
        _ => 1,
    };
    if healthy {
        if count >= rise {
            State { phase: Phase::Up, count: 0, settled: Settled::Up }
        } else {
            State { phase: Phase::Rising, count, settled: s.settled }
        }
    } else if count >= fall {
        State { phase: Phase::Down, count: 0, settled: Settled::Down }
    } else {
        State { phase: Phase::Falling, count, settled: s.settled }
    }
}

/// The check interval for a state: fast while changing, normal when settled. Disabled
/// uses the normal interval (the disable file is looked at on every tick).
pub fn next_check(state: State, svc: &Service) -> Duration {
    match state.phase {
        Phase::Init | Phase::Rising | Phase::Falling => svc.fast_interval,
        Phase::Up | Phase::Down | Phase::Disabled => svc.interval,
    }
}

/// What should be announced in `state`. A followed group decided "disable" turns "up" into
/// the down treatment at once (the decision already went through the group's down/up delays).
pub fn desired(state: State, svc: &Service, group_enabled: Option<bool>) -> Desired {
    let fallback = |f: &Fallback| match f {
        Fallback::Withdraw => Desired::Withdrawn,
        Fallback::Announce(attrs) => Desired::Announced(route(svc, attrs)),
    };
    match state.settled {
        Settled::Nothing => Desired::Undecided,
        Settled::Up if group_enabled == Some(false) => fallback(&svc.down),
        Settled::Up => Desired::Announced(route(svc, &svc.up)),
        Settled::Down => fallback(&svc.down),
        Settled::Disabled => fallback(&svc.disabled),
    }
}

fn route(svc: &Service, attrs: &Attributes) -> Route {
    Route { prefix: svc.prefix, next_hop: svc.next_hop, attrs: attrs.clone() }
}

/// The route used to withdraw a service whose announcement is unknown (at start, a
/// previous incarnation may have left it in ExaBGP): same prefix and next-hop.
pub fn withdraw_template(svc: &Service) -> Route {
    route(svc, &svc.up)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anycast::config::{RawService, resolve};

    fn svc(extra: &str) -> Service {
        let yaml = format!("prefix: 192.0.2.1/32\nmed: 100\ninterval: 5s\nfast-interval: 1s\n{extra}");
        let raw: RawService = serde_saphyr::from_str(&yaml).unwrap();
        resolve("web", &raw, &["g"]).unwrap()
    }

    /// Feed inputs from INIT and return the phases and desired treatments seen.
    fn run(svc: &Service, inputs: &[Input]) -> Vec<(Phase, Desired)> {
        let mut s = State::INIT;
        inputs
            .iter()
            .map(|i| {
                let st = step(s, *i, svc, None);
                s = st.state;
                (st.state.phase, st.desired)
            })
            .collect()
    }

    fn med(d: &Desired) -> Option<Option<u32>> {
        match d {
            Desired::Announced(r) => Some(r.attrs.med),
            _ => None,
        }
    }

    use Input::Checked;
    const OK: Input = Checked(true);
    const KO: Input = Checked(false);

    #[test]
    fn rises_after_rise_successes_and_falls_after_fall_failures() {
        let s = svc("rise: 3\nfall: 2");
        let out = run(&s, &[OK, OK, OK, OK, KO, KO, KO]);
        let phases: Vec<Phase> = out.iter().map(|o| o.0).collect();
        use Phase::*;
        assert_eq!(phases, vec![Rising, Rising, Up, Up, Falling, Down, Down]);
        // Nothing announced until settled; stays announced while falling; withdrawn when down.
        assert_eq!(out[0].1, Desired::Undecided);
        assert_eq!(out[1].1, Desired::Undecided);
        assert_eq!(med(&out[2].1), Some(Some(100)));
        assert_eq!(med(&out[4].1), Some(Some(100)));
        assert_eq!(out[5].1, Desired::Withdrawn);
    }

    #[test]
    fn rise_one_goes_up_on_first_success() {
        let s = svc("rise: 1\nfall: 1");
        let out = run(&s, &[OK, KO, OK]);
        assert_eq!(out.iter().map(|o| o.0).collect::<Vec<_>>(), vec![Phase::Up, Phase::Down, Phase::Up]);
    }

    #[test]
    fn one_opposite_result_flips_direction() {
        let s = svc("rise: 3\nfall: 3");
        let out = run(&s, &[OK, OK, KO, OK, OK, OK]);
        let phases: Vec<Phase> = out.iter().map(|o| o.0).collect();
        use Phase::*;
        assert_eq!(phases, vec![Rising, Rising, Falling, Rising, Rising, Up]);
    }

    #[test]
    fn down_then_recovering_keeps_down_treatment_until_up() {
        let s = svc("rise: 2\nfall: 1");
        let out = run(&s, &[OK, OK, KO, OK, OK]);
        assert_eq!(out[2], (Phase::Down, Desired::Withdrawn));
        assert_eq!(out[3], (Phase::Rising, Desired::Withdrawn));
        assert_eq!(med(&out[4].1), Some(Some(100)));
    }

    #[test]
    fn fast_interval_while_changing() {
        let s = svc("rise: 2\nfall: 2");
        let mut st = State::INIT;
        assert_eq!(next_check(st, &s), Duration::from_secs(1));
        let mut intervals = vec![];
        for i in [OK, OK, OK, KO, KO, Input::Disabled] {
            let r = step(st, i, &s, None);
            st = r.state;
            intervals.push(r.next_check.as_secs());
        }
        // rising, up, up, falling, down, disabled
        assert_eq!(intervals, vec![1, 5, 5, 1, 5, 5]);
    }

    #[test]
    fn degraded_announces_worse_attributes_instead_of_withdrawing() {
        let s = svc("rise: 1\nfall: 1\ndown-mode: degraded\ndegraded: {med: 1000, as-path-prepend: [65001, 65001]}");
        let out = run(&s, &[OK, KO]);
        let Desired::Announced(up) = &out[0].1 else { panic!("up announces") };
        let Desired::Announced(down) = &out[1].1 else { panic!("degraded announces") };
        assert_eq!(up.attrs.med, Some(100));
        assert_eq!(down.attrs.med, Some(1000));
        assert_eq!(down.attrs.as_path, vec![65001, 65001]);
        assert_eq!((up.prefix, up.next_hop), (down.prefix, down.next_hop));
    }

    #[test]
    fn withdraw_mode_withdraws() {
        let s = svc("rise: 1\nfall: 1\ndown-mode: withdraw");
        assert_eq!(run(&s, &[OK, KO])[1].1, Desired::Withdrawn);
    }

    #[test]
    fn disable_file_wins_from_any_state_and_resettles_after() {
        let s = svc("rise: 2\nfall: 2\ndisable-file: /x\non-disabled: announce\ndisabled-med: 500");
        let d = Input::Disabled;
        let out = run(&s, &[OK, OK, d, OK, OK, KO, d, KO, KO]);
        use Phase::*;
        let phases: Vec<Phase> = out.iter().map(|o| o.0).collect();
        assert_eq!(phases, vec![Rising, Up, Disabled, Rising, Up, Falling, Disabled, Falling, Down]);
        assert_eq!(med(&out[2].1), Some(Some(500)));
        assert_eq!(med(&out[3].1), Some(Some(500)), "disabled stays in place while rising");
        assert_eq!(med(&out[4].1), Some(Some(100)));
        assert_eq!(out[8].1, Desired::Withdrawn);
        // From init, too.
        assert_eq!(
            run(&s, &[d])[0],
            (
                Disabled,
                Desired::Announced(Route {
                    prefix: s.prefix,
                    next_hop: s.next_hop,
                    attrs: Attributes { med: Some(500), ..s.up.clone() },
                })
            )
        );
    }

    #[test]
    fn disable_file_withdraws_by_default() {
        let s = svc("rise: 1\ndisable-file: /x");
        assert_eq!(run(&s, &[OK, Input::Disabled])[1], (Phase::Disabled, Desired::Withdrawn));
    }

    #[test]
    fn unhealthy_group_turns_up_into_down_treatment() {
        let s = svc("rise: 1\ngroup: g\ndown-mode: degraded");
        let up = step(State::INIT, OK, &s, None).state;
        assert_eq!(med(&desired(up, &s, Some(true))), Some(Some(100)));
        assert_eq!(med(&desired(up, &s, None)), Some(Some(100)));
        assert_eq!(med(&desired(up, &s, Some(false))), Some(Some(1000)));
        // A group verdict never makes an unsettled service announce.
        assert_eq!(desired(State::INIT, &s, Some(true)), Desired::Undecided);
    }
}
