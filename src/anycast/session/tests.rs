use super::*;
use crate::anycast::config::{Attributes, NextHop};

fn route(med: u32) -> Route {
    Route {
        prefix: "192.0.2.1/32".parse().unwrap(),
        next_hop: NextHop::SelfAddress,
        attrs: Attributes { med: Some(med), ..Default::default() },
    }
}

const S: Duration = Duration::from_secs(1);
const TIMING: Timing = Timing {
    ack_timeout: Duration::from_secs(5),
    resend_after: Duration::from_secs(15),
    retry_max: Duration::from_secs(30),
};

fn sessions(routes: Vec<Route>) -> Session {
    Session::new(routes, TIMING)
}

fn session() -> Session {
    sessions(vec![route(100)])
}

/// A retry delay of the `n`th error in a row (from 1): 2^(n-1) s, capped, plus jitter.
fn assert_retry(d: Duration, n: u32) {
    let base = (S * (1 << (n - 1))).min(TIMING.retry_max);
    assert!(d >= base && d < base * 2, "retry {n}: {d:?} not in [{base:?}, {:?})", base * 2);
}

#[test]
fn undecided_sends_nothing_then_announces_once() {
    let t = Instant::now();
    let mut s = session();
    assert_eq!(s.next_command(t), None);
    s.set_desired(0, Desired::Announced(route(100)));
    assert_eq!(s.next_command(t).as_deref(), Some("announce route 192.0.2.1/32 next-hop self med 100"));
    assert_eq!(s.next_command(t), None, "one command in flight");
    assert_eq!(s.ack(true, t), AckOutcome::Applied { slot: 0 });
    // Same wish again: never repeated.
    s.set_desired(0, Desired::Announced(route(100)));
    assert_eq!(s.next_command(t), None);
    assert_eq!(s.commands_sent, 1);
}

#[test]
fn withdraw_uses_what_was_announced_and_unknown_uses_the_template() {
    let t = Instant::now();
    let mut s = session();
    s.set_desired(0, Desired::Withdrawn);
    assert_eq!(s.next_command(t).as_deref(), Some("withdraw route 192.0.2.1/32 next-hop self med 100"));
    s.ack(true, t);
    assert_eq!(s.next_command(t), None);
    s.set_desired(0, Desired::Announced(route(1000)));
    s.next_command(t);
    s.ack(true, t);
    s.set_desired(0, Desired::Withdrawn);
    assert_eq!(s.next_command(t).as_deref(), Some("withdraw route 192.0.2.1/32 next-hop self med 1000"));
}

#[test]
fn error_keeps_old_state_and_retries_with_backoff() {
    let t = Instant::now();
    let mut s = session();
    s.set_desired(0, Desired::Announced(route(100)));
    s.next_command(t).unwrap();
    let AckOutcome::Failed { slot: 0, retry_in: first } = s.ack(false, t) else { panic!("failed") };
    assert_retry(first, 1);
    assert_eq!(s.in_place(0), Some(&InPlace::Unknown));
    assert_eq!(s.next_command(t + first - Duration::from_millis(1)), None, "backing off");
    assert_eq!(s.next_wakeup(), Some(t + first));
    let t1 = t + first;
    let line = s.next_command(t1).unwrap();
    assert!(line.starts_with("announce"));
    let AckOutcome::Failed { retry_in: second, .. } = s.ack(false, t1) else { panic!("failed") };
    assert_retry(second, 2);
    assert_eq!(s.next_command(t1 + second - Duration::from_millis(1)), None);
    s.next_command(t1 + second).unwrap();
    assert_eq!(s.ack(true, t1 + second), AckOutcome::Applied { slot: 0 });
    assert_eq!(s.errors, 2);
}

#[test]
fn backoff_is_capped_and_reset_by_a_new_wish() {
    let mut t = Instant::now();
    let mut s = session();
    s.set_desired(0, Desired::Announced(route(100)));
    for n in 1..=8 {
        s.next_command(t).unwrap();
        let AckOutcome::Failed { retry_in, .. } = s.ack(false, t) else { panic!("failed") };
        assert_retry(retry_in, n);
        t += retry_in;
    }
    s.set_desired(0, Desired::Withdrawn);
    s.next_command(t).unwrap();
    let AckOutcome::Failed { retry_in, .. } = s.ack(false, t) else { panic!("failed") };
    assert_retry(retry_in, 1);
}

#[test]
fn ack_timeout_is_reported_and_a_late_ack_still_matches() {
    let t = Instant::now();
    let mut s = session();
    s.set_desired(0, Desired::Announced(route(100)));
    s.next_command(t).unwrap();
    assert_eq!(s.check_ack_timeout(t + 4 * S), None);
    assert_eq!(s.next_wakeup(), Some(t + 5 * S));
    assert_eq!(s.check_ack_timeout(t + 5 * S), Some(Overdue::Waiting { slot: 0, waited: 5 * S }));
    assert!(s.unresponsive());
    assert_eq!(s.check_ack_timeout(t + 6 * S), None, "reported once per timeout period");
    assert_eq!(s.next_wakeup(), Some(t + 10 * S));
    // A newer wish is held (coalesced) while the old command is outstanding.
    s.set_desired(0, Desired::Withdrawn);
    assert_eq!(s.next_command(t + 7 * S), None);
    assert_eq!(s.ack(true, t + 8 * S), AckOutcome::Applied { slot: 0 });
    assert!(!s.unresponsive());
    assert_eq!(s.in_place(0), Some(&InPlace::Announced(route(100))));
    assert_eq!(s.next_command(t + 8 * S).as_deref(), Some("withdraw route 192.0.2.1/32 next-hop self med 100"));
    assert_eq!(s.ack_timeouts, 1);
}

#[test]
fn a_lost_ack_is_given_up_and_the_latest_wish_sent_again() {
    let t = Instant::now();
    let mut s = sessions(vec![route(100), route(200)]);
    s.set_desired(0, Desired::Announced(route(100)));
    assert_eq!(s.next_command(t).as_deref(), Some("announce route 192.0.2.1/32 next-hop self med 100"));
    // Meanwhile both services change their minds; nothing is sent over the silence.
    s.set_desired(0, Desired::Withdrawn);
    s.set_desired(1, Desired::Announced(route(200)));
    assert_eq!(s.check_ack_timeout(t + 5 * S), Some(Overdue::Waiting { slot: 0, waited: 5 * S }));
    assert_eq!(s.check_ack_timeout(t + 10 * S), Some(Overdue::Waiting { slot: 0, waited: 10 * S }));
    assert_eq!(s.next_command(t + 14 * S), None);
    assert_eq!(s.next_wakeup(), Some(t + 15 * S), "wakes up to give up");
    assert_eq!(s.check_ack_timeout(t + 15 * S), Some(Overdue::GivenUp { slot: 0, waited: 15 * S }));
    assert!(s.unresponsive(), "until an ACK arrives again");
    assert_eq!(s.in_place(0), Some(&InPlace::Unknown), "the announce may or may not be in place");
    // The session goes on: the other service's turn first, then the latest wish of the first.
    assert_eq!(s.next_command(t + 15 * S).as_deref(), Some("announce route 192.0.2.1/32 next-hop self med 200"));
    assert_eq!(s.ack(true, t + 15 * S), AckOutcome::Applied { slot: 1 });
    assert!(!s.unresponsive());
    assert_eq!(s.next_command(t + 15 * S).as_deref(), Some("withdraw route 192.0.2.1/32 next-hop self med 100"));
    assert_eq!(s.ack(true, t + 15 * S), AckOutcome::Applied { slot: 0 });
    assert_eq!(s.in_place(0), Some(&InPlace::Withdrawn));
    assert_eq!((s.lost_acks, s.ack_timeouts), (1, 2));
}

#[test]
fn a_neighbor_up_gives_up_an_overdue_ack_and_resends() {
    let t = Instant::now();
    let mut s = session();
    s.set_desired(0, Desired::Announced(route(100)));
    s.next_command(t).unwrap();
    // Not overdue yet: a neighbor coming up does not touch the command in flight.
    s.neighbor_up();
    assert_eq!(s.next_command(t), None);
    s.check_ack_timeout(t + 5 * S).unwrap();
    s.neighbor_up();
    assert_eq!(s.next_command(t + 6 * S).as_deref(), Some("announce route 192.0.2.1/32 next-hop self med 100"));
    assert_eq!(s.ack(true, t + 6 * S), AckOutcome::Applied { slot: 0 });
    assert_eq!(s.lost_acks, 1);
}

#[test]
fn services_take_turns() {
    let t = Instant::now();
    let mut s = sessions(vec![route(100), route(200)]);
    s.set_desired(0, Desired::Announced(route(100)));
    s.set_desired(1, Desired::Announced(route(200)));
    // Service 0 keeps failing; service 1 still gets its turn right after.
    assert!(s.next_command(t).unwrap().ends_with("med 100"));
    s.ack(false, t);
    assert!(s.next_command(t).unwrap().ends_with("med 200"));
}

#[test]
fn unexpected_ack_is_ignored() {
    let mut s = session();
    assert_eq!(s.ack(true, Instant::now()), AckOutcome::Unexpected);
}

#[test]
fn neighbor_up_reannounces_only_what_was_announced() {
    let t = Instant::now();
    let mut s = sessions(vec![route(100), route(100)]);
    s.set_desired(0, Desired::Announced(route(100)));
    s.set_desired(1, Desired::Withdrawn);
    for _ in 0..2 {
        s.next_command(t).unwrap();
        s.ack(true, t);
    }
    assert_eq!(s.next_command(t), None);
    s.neighbor_up();
    assert_eq!(s.next_command(t).as_deref(), Some("announce route 192.0.2.1/32 next-hop self med 100"));
    s.ack(true, t);
    assert_eq!(s.next_command(t), None, "the withdrawn one is not re-sent");
}

#[test]
fn drain_withdraws_everything_and_ignores_new_wishes() {
    let t = Instant::now();
    let mut s = sessions(vec![route(100), route(200)]);
    s.set_desired(0, Desired::Announced(route(100)));
    s.next_command(t).unwrap();
    s.ack(true, t);
    s.drain();
    s.set_desired(0, Desired::Announced(route(100)));
    let mut lines = vec![];
    while let Some(l) = s.next_command(t) {
        lines.push(l);
        assert!(!s.drained());
        s.ack(true, t);
    }
    assert_eq!(
        lines,
        vec![
            "withdraw route 192.0.2.1/32 next-hop self med 100",
            // Never settled, so unknown: withdrawn with the template to be sure.
            "withdraw route 192.0.2.1/32 next-hop self med 200",
        ]
    );
    assert!(s.drained());
}
