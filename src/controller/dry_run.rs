//! `--dry-run`: decide as if every printed line had been applied, without touching the
//! device; what the device later reports about a path replaces what was printed for it.

use crate::model::SourceEvent;

use super::runtime::Loop;

impl Loop {
    /// Dry-run: what the device now reports about a path replaces what was printed for it,
    /// and a stale target forgets everything (after re-sync the line is printed again).
    pub(super) fn forget_printed(&mut self, ev: &SourceEvent) {
        match ev {
            SourceEvent::Notification { target, updates, deletes, .. } => {
                if let Some(p) = self.printed.get_mut(target.as_ref()) {
                    for path in updates.iter().map(|(p, _)| p).chain(deletes) {
                        p.retain(|printed, _| !printed.starts_with(path.as_str()));
                    }
                }
            }
            SourceEvent::Stale { target, .. } => {
                self.printed.remove(target.as_ref());
            }
            SourceEvent::Synced { .. } | SourceEvent::Connecting { .. } | SourceEvent::Subscribed { .. } => {}
        }
    }
}
