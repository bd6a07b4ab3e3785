//! The ExaBGP actuator end to end inside one process: a fake ExaBGP on in-memory pipes,
//! exec checks that look at files the test creates and removes. Every wait has a deadline.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use opergroupd::anycast::machine::Phase;

use opergroupd::anycast::config::{RawService, Service, resolve};
use opergroupd::anycast::{Exabgp, Exit, Handle, Options};
use support::wait_until;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

const DEADLINE: Duration = Duration::from_secs(10);

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("opergroupd-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn service(yaml: &str) -> Service {
    let raw: RawService = serde_saphyr::from_str(yaml).expect("yaml");
    resolve("web", &raw, &["g"]).expect("valid")
}

/// A service healthy while `health` exists; fast timers so tests are quick.
fn file_service(health: &Path, extra: &str) -> Service {
    service(&format!(
        "prefix: 192.0.2.1/32\nmed: 100\nchecks: [{{exec: 'test -e {}'}}]\ninterval: 100ms\nfast-interval: 20ms\ntimeout: 1s\nrise: 2\nfall: 2\n{extra}",
        health.display()
    ))
}

/// The ExaBGP side of the pipes.
struct FakeExabgp {
    commands: Lines<BufReader<ReadHalf<DuplexStream>>>,
    acks: WriteHalf<DuplexStream>,
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    run: JoinHandle<Result<Exit, opergroupd::anycast::ExabgpError>>,
}

fn start(services: Vec<Service>, opts: Options) -> FakeExabgp {
    let (ours, theirs) = tokio::io::duplex(4096);
    let (their_read, their_write) = tokio::io::split(theirs);
    let (our_read, our_write) = tokio::io::split(ours);
    let exabgp = Exabgp::new(services, opts);
    let handle = exabgp.handle();
    let (stop, stopped) = oneshot::channel::<()>();
    let run = tokio::spawn(exabgp.run(our_read, our_write, async move {
        let _ = stopped.await;
    }));
    FakeExabgp { commands: BufReader::new(their_read).lines(), acks: their_write, handle, stop: Some(stop), run }
}

impl FakeExabgp {
    async fn next_command(&mut self) -> String {
        timeout(DEADLINE, self.commands.next_line())
            .await
            .expect("a command before the deadline")
            .expect("read")
            .expect("not EOF")
    }

    async fn say(&mut self, line: &str) {
        self.acks.write_all(format!("{line}\n").as_bytes()).await.unwrap();
    }

    /// Next command, acknowledged with `done`.
    async fn expect(&mut self, want: &str) {
        let got = self.next_command().await;
        assert_eq!(got, want);
        self.say("done").await;
    }

    /// Wait until the service has run `n` more rounds of checks.
    async fn rounds(&self, n: u64) {
        let start = self.handle.snapshot()[0].checks_run;
        wait_until("rounds of checks", DEADLINE, || self.handle.snapshot()[0].checks_run >= start + n).await;
    }

    /// No command was written (checked after some rounds of checks have run).
    async fn assert_quiet_for_rounds(&mut self, n: u64) {
        self.rounds(n).await;
        let next = timeout(Duration::from_millis(1), self.commands.next_line()).await;
        assert!(next.is_err(), "unexpected command: {next:?}");
    }

    async fn terminate(mut self) -> Exit {
        let _ = self.stop.take().unwrap().send(());
        self.finish().await
    }

    async fn finish(self) -> Exit {
        timeout(DEADLINE, self.run).await.expect("run ends").expect("join").expect("clean exit")
    }
}

const ANNOUNCE: &str = "announce route 192.0.2.1/32 next-hop self med 100";
const WITHDRAW: &str = "withdraw route 192.0.2.1/32 next-hop self med 100";

#[tokio::test]
async fn announces_when_up_withdraws_when_down_never_repeats() {
    let dir = TempDir::new("updown");
    let health = dir.file("healthy");
    std::fs::write(&health, "").unwrap();
    let mut x = start(vec![file_service(&health, "")], Options::default());
    x.expect(ANNOUNCE).await;
    assert_eq!(x.handle.snapshot()[0].state, Phase::Up);
    x.assert_quiet_for_rounds(5).await;

    std::fs::remove_file(&health).unwrap();
    x.expect(WITHDRAW).await;
    assert_eq!(x.handle.snapshot()[0].state, Phase::Down);
    x.assert_quiet_for_rounds(3).await;

    std::fs::write(&health, "").unwrap();
    x.expect(ANNOUNCE).await;
    let s = &x.handle.snapshot()[0];
    assert_eq!(s.transitions, 6, "rising, up, falling, down, rising, up: {s:?}");
    assert_eq!(x.terminate().await, Exit::Terminated);
}

#[tokio::test]
async fn sigterm_withdraws_before_exiting() {
    let dir = TempDir::new("term");
    let health = dir.file("healthy");
    std::fs::write(&health, "").unwrap();
    let mut x = start(vec![file_service(&health, "")], Options::default());
    x.expect(ANNOUNCE).await;
    let _ = x.stop.take().unwrap().send(());
    x.expect(WITHDRAW).await;
    assert_eq!(x.finish().await, Exit::Terminated);
}

#[tokio::test]
async fn sigterm_without_ack_exits_after_the_grace_period() {
    let dir = TempDir::new("grace");
    let health = dir.file("healthy");
    std::fs::write(&health, "").unwrap();
    let opts = Options { shutdown_grace: Duration::from_millis(300), ..Options::default() };
    let mut x = start(vec![file_service(&health, "")], opts);
    x.expect(ANNOUNCE).await;
    let _ = x.stop.take().unwrap().send(());
    assert_eq!(x.next_command().await, WITHDRAW);
    let started = Instant::now();
    assert_eq!(x.finish().await, Exit::Terminated);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn exabgp_shutdown_and_eof_end_the_run_without_withdrawing() {
    let dir = TempDir::new("shutdown");
    let health = dir.file("healthy");
    std::fs::write(&health, "").unwrap();
    let mut x = start(vec![file_service(&health, "")], Options::default());
    x.expect(ANNOUNCE).await;
    x.say("shutdown 123 1").await;
    assert_eq!(x.finish().await, Exit::Shutdown);

    let mut x = start(vec![file_service(&health, "")], Options::default());
    x.expect(ANNOUNCE).await;
    x.acks.shutdown().await.unwrap();
    let FakeExabgp { run, .. } = x;
    assert_eq!(timeout(DEADLINE, run).await.unwrap().unwrap().unwrap(), Exit::Eof);
}

#[tokio::test]
async fn error_is_retried_and_neighbor_up_reannounces() {
    let dir = TempDir::new("retry");
    let health = dir.file("healthy");
    std::fs::write(&health, "").unwrap();
    let mut x = start(vec![file_service(&health, "")], Options::default());
    assert_eq!(x.next_command().await, ANNOUNCE);
    x.say("error").await;
    let t = Instant::now();
    x.expect(ANNOUNCE).await;
    assert!(t.elapsed() >= Duration::from_millis(900), "retried after the 1 s backoff");
    assert_eq!(x.handle.session().errors, 1);
    wait_until("the announce in place", DEADLINE, || x.handle.snapshot()[0].in_place == ANNOUNCE).await;

    x.say("neighbor 192.0.2.254 up").await;
    x.expect(ANNOUNCE).await;
    // JSON encoder form.
    x.say(r#"{ "exabgp": "4.0.1", "type": "state", "neighbor": { "address": { "local": "192.0.2.2", "peer": "192.0.2.254" }, "state": "up" } }"#).await;
    x.expect(ANNOUNCE).await;
    wait_until("two neighbor ups", DEADLINE, || x.handle.session().neighbor_ups == 2).await;
    x.terminate().await;
}

#[tokio::test]
async fn ack_timeout_holds_commands_until_the_late_ack() {
    let dir = TempDir::new("acktimeout");
    let health = dir.file("healthy");
    std::fs::write(&health, "").unwrap();
    let opts = Options { ack_timeout: Duration::from_millis(100), ..Options::default() };
    let mut x = start(vec![file_service(&health, "")], opts);
    assert_eq!(x.next_command().await, ANNOUNCE);
    wait_until("the session unresponsive", DEADLINE, || x.handle.session().unresponsive).await;
    // The service goes down meanwhile: the withdraw is held, not sent over the silence.
    std::fs::remove_file(&health).unwrap();
    x.assert_quiet_for_rounds(4).await;
    assert_eq!(x.handle.snapshot()[0].desired, "withdrawn");
    x.say("done").await; // the late ACK of the announce
    x.expect(WITHDRAW).await;
    wait_until("the route withdrawn", DEADLINE, || x.handle.snapshot()[0].in_place == "withdrawn").await;
    let s = x.handle.session();
    assert!(!s.unresponsive && s.ack_timeouts >= 1, "{s:?}");
    x.terminate().await;
}

/// Issue 10: one missing ACK used to stop the session for good. After `resend_after` the
/// ACK is given up as lost, the latest desired state is sent again, and commands flow.
#[tokio::test]
async fn a_lost_ack_is_given_up_and_the_session_goes_on() {
    let dir = TempDir::new("lostack");
    let health = dir.file("healthy");
    std::fs::write(&health, "").unwrap();
    let resend_after = Duration::from_millis(400);
    let opts = Options { ack_timeout: Duration::from_millis(100), resend_after, ..Options::default() };
    let mut x = start(vec![file_service(&health, "")], opts);
    let sent = Instant::now();
    assert_eq!(x.next_command().await, ANNOUNCE); // its ACK is lost: never answered
    // The service goes down meanwhile: the withdraw waits, then goes out once the ACK is given up.
    std::fs::remove_file(&health).unwrap();
    x.expect(WITHDRAW).await;
    assert!(sent.elapsed() >= resend_after, "sent {:?} after the announce, before resend-after", sent.elapsed());
    wait_until("the route withdrawn", DEADLINE, || x.handle.snapshot()[0].in_place == "withdrawn").await;
    let s = x.handle.session();
    assert!(s.lost_acks == 1 && !s.unresponsive, "{s:?}");
    // And the session keeps working.
    std::fs::write(&health, "").unwrap();
    x.expect(ANNOUNCE).await;
    x.terminate().await;
}

#[tokio::test]
async fn degraded_mode_announces_worse_med_instead_of_withdrawing() {
    let dir = TempDir::new("degraded");
    let health = dir.file("healthy");
    std::fs::write(&health, "").unwrap();
    let svc = file_service(&health, "down-mode: degraded\ndegraded: {med: 1000, as-path-prepend: [65001, 65001]}");
    let mut x = start(vec![svc], Options::default());
    x.expect(ANNOUNCE).await;
    std::fs::remove_file(&health).unwrap();
    x.expect("announce route 192.0.2.1/32 next-hop self med 1000 as-path [ 65001 65001 ]").await;
    let _ = x.stop.take().unwrap().send(());
    x.expect("withdraw route 192.0.2.1/32 next-hop self med 1000 as-path [ 65001 65001 ]").await;
    assert_eq!(x.finish().await, Exit::Terminated);
}

#[tokio::test]
async fn disable_file_suspends_the_service() {
    let dir = TempDir::new("disable");
    let health = dir.file("healthy");
    let disable = dir.file("disabled");
    std::fs::write(&health, "").unwrap();
    let extra = format!("disable-file: {}\non-disabled: announce\ndisabled-med: 500", disable.display());
    let mut x = start(vec![file_service(&health, &extra)], Options::default());
    x.expect(ANNOUNCE).await;
    std::fs::write(&disable, "").unwrap();
    x.expect("announce route 192.0.2.1/32 next-hop self med 500").await;
    assert_eq!(x.handle.snapshot()[0].state, Phase::Disabled);
    std::fs::remove_file(&disable).unwrap();
    x.expect(ANNOUNCE).await;
    x.terminate().await;
}

#[tokio::test]
async fn group_decision_gates_the_announcement_at_once() {
    let dir = TempDir::new("group");
    let health = dir.file("healthy");
    std::fs::write(&health, "").unwrap();
    // A long interval: the reaction must come from the group input, not a check round.
    let svc = service(&format!(
        "prefix: 192.0.2.1/32\nmed: 100\nchecks: [{{exec: 'test -e {}'}}]\ninterval: 1h\nfast-interval: 20ms\nrise: 1\ngroup: g",
        health.display()
    ));
    let mut x = start(vec![svc], Options::default());
    x.expect(ANNOUNCE).await;
    x.handle.set_group_decision("g", false);
    x.expect(WITHDRAW).await;
    assert_eq!(x.handle.snapshot()[0].group_enabled, Some(false));
    x.handle.set_group_decision("g", true);
    x.expect(ANNOUNCE).await;
    x.terminate().await;
}

#[tokio::test]
async fn without_acks_commands_flow_on_write() {
    let dir = TempDir::new("noack");
    let health = dir.file("healthy");
    std::fs::write(&health, "").unwrap();
    let opts = Options { ack: false, ..Options::default() };
    let mut x = start(vec![file_service(&health, "")], opts);
    assert_eq!(x.next_command().await, ANNOUNCE);
    std::fs::remove_file(&health).unwrap();
    assert_eq!(x.next_command().await, WITHDRAW);
    wait_until("two commands sent", DEADLINE, || x.handle.session().commands_sent == 2).await;
    let _ = x.stop.take().unwrap().send(());
    assert_eq!(x.finish().await, Exit::Terminated);
}
