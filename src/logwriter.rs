//! Where log lines go: a queue in memory, written out to stderr by a thread of its own.
//!
//! The control loop runs on one thread. A `write(2)` per log line on that thread costs a
//! syscall per decision, and when whoever reads stderr stops (a paused terminal, a log
//! shipper behind, a full container log pipe) the write blocks and every decision with it.
//! Here logging appends the formatted line to a buffer; the writer thread is woken when the
//! buffer stops being empty, writes all of it in one call, then waits `LINGER` so that a
//! burst (a storm logs a few lines per leaf) becomes a few large writes, not a wake-up and a
//! write per line. Up to `LIMIT` bytes wait; past that logging waits too: a decision's line
//! is late rather than lost.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// Bytes queued before logging waits: about 100,000 lines.
const LIMIT: usize = 16 << 20;
/// After each write, how long the thread lets lines gather before the next.
const LINGER: Duration = Duration::from_millis(5);
/// At exit, how long to wait for the queue to be written: a reader of stderr that stopped
/// must not hold the exit (SIGTERM exits within 5 s, contract section 1).
const EXIT_WAIT: Duration = Duration::from_secs(1);

struct Queue {
    bytes: Vec<u8>,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when the queue stops being empty, and at close.
    filled: Condvar,
    /// Signalled when the thread took the queue: room for waiting loggers.
    drained: Condvar,
    limit: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Makes the writers the log subscriber writes each line through: into the queue, or
/// straight to stderr when there is no writer thread.
#[derive(Clone)]
pub struct LogQueue {
    shared: Option<Arc<Shared>>,
}

impl LogQueue {
    /// No queue: each line is written to stderr where it is logged (the demo, or no thread).
    pub fn stderr() -> LogQueue {
        LogQueue { shared: None }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogQueue {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter { shared: self.shared.as_deref() }
    }
}

/// Owns the writer thread. Dropping it writes out everything queued, then stops the
/// thread; if stderr takes none of it for `EXIT_WAIT`, what is left is given up.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogThread {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    finished: std::sync::mpsc::Receiver<()>,
    exit_wait: Duration,
}

/// A queue written to `out` by a new thread named `opergroupd-log`.
pub fn spawn(out: impl Write + Send + 'static) -> std::io::Result<(LogQueue, LogThread)> {
    spawn_with(out, LIMIT, LINGER)
}

fn spawn_with(
    mut out: impl Write + Send + 'static,
    limit: usize,
    linger: Duration,
) -> std::io::Result<(LogQueue, LogThread)> {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue { bytes: Vec::new(), closed: false }),
        filled: Condvar::new(),
        drained: Condvar::new(),
        limit,
    });
    let theirs = shared.clone();
    let (finished_tx, finished) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new().name("opergroupd-log".into()).spawn(move || {
        let mut spare = Vec::new();
        loop {
            let mut q = theirs.lock();
            while q.bytes.is_empty() && !q.closed {
                q = theirs.filled.wait(q).unwrap_or_else(|p| p.into_inner());
            }
            if q.bytes.is_empty() {
                let _ = finished_tx.send(());
                return;
            }
            std::mem::swap(&mut q.bytes, &mut spare);
            drop(q);
            theirs.drained.notify_all();
            // Nowhere to report a failed write to but the log itself: the lines are dropped.
            let _ = out.write_all(&spare).and_then(|()| out.flush());
            spare.clear();
            std::thread::sleep(linger);
        }
    })?;
    let guard = LogThread { shared: shared.clone(), thread: Some(thread), finished, exit_wait: EXIT_WAIT };
    Ok((LogQueue { shared: Some(shared) }, guard))
}

/// Writes one line (what `tracing_subscriber::fmt` asks for per event).
pub struct LineWriter<'a> {
    shared: Option<&'a Shared>,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let Some(sh) = self.shared else {
            return std::io::stderr().write(buf);
        };
        let mut q = sh.lock();
        // A line larger than the whole limit still goes in, once the queue is empty.
        while !q.closed && !q.bytes.is_empty() && q.bytes.len() + buf.len() > sh.limit {
            q = sh.drained.wait(q).unwrap_or_else(|p| p.into_inner());
        }
        let was_empty = q.bytes.is_empty();
        q.bytes.extend_from_slice(buf);
        drop(q);
        if was_empty {
            sh.filled.notify_one();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogThread {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.filled.notify_one();
        self.shared.drained.notify_all();
        if self.finished.recv_timeout(self.exit_wait).is_ok()
            && let Some(t) = self.thread.take()
        {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tracing_subscriber::fmt::MakeWriter;

    /// A sink that keeps what it got and can be made to hang like a pipe nobody reads.
    #[derive(Clone, Default)]
    struct Sink {
        got: Arc<Mutex<Vec<u8>>>,
        writes: Arc<Mutex<usize>>,
        stuck: Arc<AtomicBool>,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            while self.stuck.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
            self.got.lock().unwrap().extend_from_slice(buf);
            *self.writes.lock().unwrap() += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("line {i}\n")).collect()
    }

    #[test]
    fn every_line_is_written_in_order_by_the_time_the_guard_is_dropped() {
        let sink = Sink::default();
        let (queue, thread) = spawn_with(sink.clone(), LIMIT, Duration::from_millis(20)).unwrap();
        for l in lines(1000) {
            queue.make_writer().write_all(l.as_bytes()).unwrap();
        }
        drop(thread);
        assert_eq!(String::from_utf8(sink.got.lock().unwrap().clone()).unwrap(), lines(1000).concat());
        // A burst is a few writes, not one per line.
        let writes = *sink.writes.lock().unwrap();
        assert!(writes < 100, "{writes} writes for 1000 lines");
    }

    #[test]
    fn a_stuck_sink_holds_no_logger_until_the_limit_and_then_loses_nothing() {
        let sink = Sink::default();
        sink.stuck.store(true, Ordering::Release);
        let line = "x".repeat(99) + "\n";
        let (queue, thread) = spawn_with(sink.clone(), 10 * line.len(), Duration::ZERO).unwrap();
        // The thread takes the first line and hangs in the sink's write; ten more fit the
        // queue without waiting.
        queue.make_writer().write_all(line.as_bytes()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !queue.shared.as_ref().unwrap().lock().bytes.is_empty() {
            assert!(std::time::Instant::now() < deadline, "the thread never took the first line");
            std::thread::sleep(Duration::from_millis(1));
        }
        for _ in 0..10 {
            queue.make_writer().write_all(line.as_bytes()).unwrap();
        }
        // The twelfth waits for room, on its own thread; it is done only once the sink moves.
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let q = queue.clone();
        let l = line.clone();
        let blocked = std::thread::spawn(move || {
            q.make_writer().write_all(l.as_bytes()).unwrap();
            done_tx.send(()).unwrap();
        });
        assert!(done_rx.recv_timeout(Duration::from_millis(200)).is_err(), "a logger did not wait at the limit");
        sink.stuck.store(false, Ordering::Release);
        done_rx.recv_timeout(Duration::from_secs(10)).expect("the waiting logger went on once the sink moved");
        blocked.join().unwrap();
        drop(thread);
        assert_eq!(sink.got.lock().unwrap().len(), 12 * line.len(), "every line, none lost");
    }

    /// A reader of stderr that stopped must not hold the process's exit.
    #[test]
    fn the_guard_gives_up_on_a_stuck_sink_at_exit() {
        let sink = Sink::default();
        sink.stuck.store(true, Ordering::Release);
        let (queue, mut thread) = spawn_with(sink.clone(), LIMIT, Duration::ZERO).unwrap();
        thread.exit_wait = Duration::from_millis(100);
        queue.make_writer().write_all(b"never written\n").unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(thread);
            done_tx.send(()).unwrap();
        });
        done_rx.recv_timeout(Duration::from_secs(10)).expect("dropping the guard waited on the stuck sink");
        sink.stuck.store(false, Ordering::Release);
    }
}
