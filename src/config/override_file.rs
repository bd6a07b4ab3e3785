//! The maintenance override file: while it exists, enforcement is suspended for every
//! group (empty file) or for the groups it names, one per line, `#` starting a comment.
//! The habit ExaBGP's healthcheck taught operators: `touch` to drain, `rm` to resume.
//! A control input read while running (its path is the config's `override-file:`), so it
//! lives with the config; status only reports what it last said.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

/// Larger files are read up to this size: a list of group names is never this long.
const MAX_BYTES: u64 = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Override {
    /// No file: enforce as configured.
    None,
    /// The file exists and names no group (empty, only comments, or unreadable).
    All,
    /// The file names these groups.
    Groups(BTreeSet<String>),
}

impl Override {
    /// `none`, `all` or `groups`, as /status says it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Override::None => "none",
            Override::All => "all",
            Override::Groups(_) => "groups",
        }
    }

    pub fn suspends(&self, group: &str) -> bool {
        match self {
            Override::None => false,
            Override::All => true,
            Override::Groups(groups) => groups.contains(group),
        }
    }
}

/// How often [`watch_override`] looks at the file.
pub const OVERRIDE_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// Watches the override file off the controller's event path: reads it now (so nothing is
/// decided before it is known), then every `every` on the blocking pool, and publishes each
/// change. The loop only borrows the latest value; stops when `cancel` fires or every
/// receiver is gone.
pub fn watch_override(
    path: std::path::PathBuf,
    every: std::time::Duration,
    cancel: tokio_util::sync::CancellationToken,
) -> tokio::sync::watch::Receiver<Override> {
    let (tx, rx) = tokio::sync::watch::channel(read_override(&path));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tx.closed() => return,
                _ = tick.tick() => {}
            }
            let p = path.clone();
            let Ok(now) = tokio::task::spawn_blocking(move || read_override(&p)).await else { return };
            tx.send_if_modified(|old| {
                let changed = *old != now;
                *old = now;
                changed
            });
        }
    });
    rx
}

/// Read the override file: one open and a small read (blocking; see [`watch_override`]).
///
/// A file that exists but cannot be read suspends every group: the operator created it
/// to stop the controller, and what they meant cannot be told apart.
pub fn read_override(path: &Path) -> Override {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Override::None,
        Err(_) => return Override::All,
    };
    let mut text = String::new();
    if file.take(MAX_BYTES).read_to_string(&mut text).is_err() {
        return Override::All;
    }
    parse_override(&text)
}

/// The file's content: group names, one per line; `#` to end of line is a comment.
pub fn parse_override(text: &str) -> Override {
    let groups: BTreeSet<String> = text
        .lines()
        .map(|line| line.split_once('#').map_or(line, |(name, _)| name).trim())
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect();
    if groups.is_empty() { Override::All } else { Override::Groups(groups) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(names: &[&str]) -> Override {
        Override::Groups(names.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn content_rules() {
        assert_eq!(parse_override(""), Override::All);
        assert_eq!(parse_override("# draining for RMA 1234\n\n"), Override::All);
        assert_eq!(
            parse_override("leaf1-es1\n  leaf2-es1  # ticket 42\n#leaf3-es1\n"),
            groups(&["leaf1-es1", "leaf2-es1"])
        );
    }

    #[test]
    fn suspends_only_named_groups() {
        let ov = groups(&["leaf1-es1"]);
        assert!(ov.suspends("leaf1-es1"));
        assert!(!ov.suspends("leaf2-es1"));
        assert!(Override::All.suspends("anything"));
        assert!(!Override::None.suspends("leaf1-es1"));
    }

    #[tokio::test]
    async fn the_watcher_publishes_each_change_of_the_file() {
        let dir = std::env::temp_dir().join(format!("opergroupd-override-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("maintenance");
        std::fs::write(&path, "leaf1-es1\n").expect("write override");
        let cancel = tokio_util::sync::CancellationToken::new();
        let mut rx = watch_override(path.clone(), std::time::Duration::from_millis(20), cancel.clone());
        assert_eq!(*rx.borrow_and_update(), groups(&["leaf1-es1"]), "known before the first evaluation");
        let next = async |rx: &mut tokio::sync::watch::Receiver<Override>| {
            tokio::time::timeout(std::time::Duration::from_secs(10), rx.changed()).await.expect("a change").unwrap();
            rx.borrow_and_update().clone()
        };
        std::fs::write(&path, "").expect("write override");
        assert_eq!(next(&mut rx).await, Override::All);
        std::fs::remove_file(&path).expect("remove override");
        assert_eq!(next(&mut rx).await, Override::None);
        cancel.cancel();
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn file_presence_decides() {
        let dir = std::env::temp_dir().join(format!("opergroupd-override-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("maintenance");
        let _ = std::fs::remove_file(&path);
        assert_eq!(read_override(&path), Override::None);
        std::fs::write(&path, "").expect("write override");
        assert_eq!(read_override(&path), Override::All);
        std::fs::write(&path, "leaf2-es1\n").expect("write override");
        assert_eq!(read_override(&path), groups(&["leaf2-es1"]));
        std::fs::remove_file(&path).expect("remove override");
        assert_eq!(read_override(&path), Override::None);
        // A directory in its place exists but cannot be read as a list: suspend all.
        std::fs::create_dir_all(&path).expect("dir in place of file");
        assert_eq!(read_override(&path), Override::All);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
