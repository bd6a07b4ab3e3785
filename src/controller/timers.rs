//! Every group's next wake-up in a heap, so the loop finds the earliest in O(log N)
//! instead of scanning every group on each turn (issue 14: 10,000 groups).
//!
//! Entries are never removed in place: `at` holds each group's current deadline, and a heap
//! entry that no longer matches it is dropped when it reaches the top.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

pub(super) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    at: Vec<Option<Instant>>,
}

impl Timers {
    pub(super) fn new(groups: usize) -> Self {
        Timers { heap: BinaryHeap::new(), at: vec![None; groups] }
    }

    /// Group `g` wants to be evaluated again at `due` (None: only on an event).
    pub(super) fn set(&mut self, g: usize, due: Option<Instant>) {
        if self.at[g] == due {
            return;
        }
        self.at[g] = due;
        if let Some(t) = due {
            self.heap.push(Reverse((t, g)));
            // Stale entries are dropped lazily; rebuild before they outnumber live ones.
            if self.heap.len() > 2 * self.at.len() + 64 {
                self.compact();
            }
        }
    }

    /// The earliest live deadline.
    pub(super) fn next(&mut self) -> Option<Instant> {
        while let Some(&Reverse((t, g))) = self.heap.peek() {
            if self.at[g] == Some(t) {
                return Some(t);
            }
            self.heap.pop();
        }
        None
    }

    /// Takes every group due at `now`; each is unscheduled until it is set again.
    pub(super) fn take_due(&mut self, now: Instant) -> Vec<usize> {
        let mut due = Vec::new();
        while let Some(t) = self.next() {
            if t > now {
                break;
            }
            let Some(Reverse((_, g))) = self.heap.pop() else { break };
            self.at[g] = None;
            due.push(g);
        }
        due
    }

    fn compact(&mut self) {
        self.heap = self.at.iter().enumerate().filter_map(|(g, t)| t.map(|t| Reverse((t, g)))).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_earliest_live_deadline_wins_and_moved_ones_are_forgotten() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut timers = Timers::new(3);
        timers.set(0, Some(t0 + s(5)));
        timers.set(1, Some(t0 + s(2)));
        timers.set(2, Some(t0 + s(9)));
        assert_eq!(timers.next(), Some(t0 + s(2)));
        timers.set(1, Some(t0 + s(7))); // moved later: its old entry is stale
        assert_eq!(timers.next(), Some(t0 + s(5)));
        timers.set(0, None); // cancelled
        assert_eq!(timers.next(), Some(t0 + s(7)));
        assert_eq!(timers.take_due(t0 + s(8)), vec![1]);
        assert_eq!(timers.next(), Some(t0 + s(9)));
        assert_eq!(timers.take_due(t0 + s(8)), Vec::<usize>::new());
    }

    #[test]
    fn a_taken_group_set_again_to_the_same_instant_is_scheduled_again() {
        let t0 = Instant::now();
        let mut timers = Timers::new(1);
        timers.set(0, Some(t0));
        assert_eq!(timers.take_due(t0), vec![0]);
        timers.set(0, Some(t0));
        assert_eq!(timers.take_due(t0), vec![0]);
    }

    #[test]
    fn churn_does_not_grow_the_heap_without_bound() {
        let t0 = Instant::now();
        let mut timers = Timers::new(4);
        for i in 0..10_000u64 {
            timers.set((i % 4) as usize, Some(t0 + Duration::from_millis(i)));
        }
        assert!(timers.heap.len() <= 2 * 4 + 64 + 1, "heap holds {}", timers.heap.len());
        assert_eq!(timers.next(), Some(t0 + Duration::from_millis(9_996)));
    }
}
