//! The fabric under test as one or more fabric-sim processes.
//!
//! One fabric-sim holds a listener per leaf plus a connection per leaf and collector; with a
//! hard RLIMIT_NOFILE of 20,000 (this machine, not raisable without CAP_SYS_RESOURCE) a
//! 10,000-leaf fabric does not fit in one process, so the bench starts one sim per
//! `--leaves-per-sim` leaves. The bench speaks of leaves by their global name (`leaf7001`);
//! each sim knows them by its own (`leaf2001` of the second sim at 5,000 per sim).
//! Timings that cross sims use the sims' unix-ns clocks, which derive from one system clock.

use std::path::Path;
use std::time::Duration;

use fabric_sim::{Applied, SetRecord};

use crate::http::Conn;
use crate::procs::{self, Sim};

pub struct Fleet {
    pub sims: Vec<Sim>,
    per_sim: usize,
}

impl Fleet {
    /// Starts `ceil(leaves / per_sim)` sims one after the other (each waits for its ready line).
    pub async fn start(bin: &Path, leaves: usize, per_sim: usize, logs: &Path) -> Result<Fleet, String> {
        let per_sim = per_sim.max(1);
        let mut sims = Vec::new();
        let mut left = leaves;
        while left > 0 {
            let n = left.min(per_sim);
            let log = if leaves <= per_sim {
                "fabric-sim.log".to_string()
            } else {
                format!("fabric-sim-{}.log", sims.len() + 1)
            };
            match procs::start_sim(bin, n, logs, &log).await {
                Ok(s) => sims.push(s),
                Err(e) => {
                    Fleet { sims, per_sim }.stop().await;
                    return Err(e);
                }
            }
            left -= n;
        }
        Ok(Fleet { sims, per_sim })
    }

    /// Every leaf's global name and port, in leaf order.
    pub fn leaves(&self) -> Vec<(String, u16)> {
        let mut out = Vec::new();
        for (i, sim) in self.sims.iter().enumerate() {
            let mut local: Vec<(&String, &u16)> = sim.ready.leaves.iter().collect();
            local.sort_by_key(|(n, _)| procs::leaf_number(n));
            out.extend(local.into_iter().map(|(n, p)| (self.global(i, n), *p)));
        }
        out
    }

    pub fn port(&self, global: &str) -> Option<u16> {
        let (i, local) = self.locate(global)?;
        self.sims[i].ready.leaves.get(&local).copied()
    }

    fn locate(&self, global: &str) -> Option<(usize, String)> {
        locate(self.per_sim, self.sims.len(), global)
    }

    fn global(&self, sim: usize, local: &str) -> String {
        global(self.per_sim, sim, local)
    }

    pub fn pids(&self) -> Vec<u32> {
        self.sims.iter().map(|s| s.proc.pid).collect()
    }

    /// Slowest sim's start-up (they start one after the other; this is the sum).
    pub fn started_in(&self) -> Duration {
        self.sims.iter().map(|s| s.started_in).sum()
    }

    pub fn controls(&self) -> String {
        self.sims.iter().map(|s| s.ready.control.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// A client for the sims' control APIs, one keep-alive connection per sim.
    pub fn client(&self) -> Controls {
        Controls {
            per_sim: self.per_sim,
            conns: self.sims.iter().map(|s| Conn::new(s.ready.control.clone())).collect(),
        }
    }

    pub async fn stop(self) {
        for s in self.sims {
            s.proc.stop(Duration::from_secs(5)).await;
        }
    }
}

/// Which sim serves a global leaf name, and its name there.
fn locate(per_sim: usize, sims: usize, global: &str) -> Option<(usize, String)> {
    let k = procs::leaf_number(global).checked_sub(1)?;
    let i = k / per_sim;
    (i < sims).then(|| (i, format!("leaf{}", k % per_sim + 1)))
}

/// A batch of (global leaf, interface, up) split per sim, in order: each sim's positions in
/// `links` and its batch in its own leaf names.
type SimBatch<'a> = (Vec<usize>, Vec<(String, &'a str, bool)>);

fn per_sim<'a>(per_sim: usize, sims: usize, links: &[(&str, &'a str, bool)]) -> Result<Vec<SimBatch<'a>>, String> {
    let mut out: Vec<SimBatch<'a>> = vec![Default::default(); sims];
    for (k, &(leaf, iface, up)) in links.iter().enumerate() {
        let (i, local) = locate(per_sim, sims, leaf).ok_or_else(|| format!("no sim serves {leaf}"))?;
        out[i].0.push(k);
        out[i].1.push((local, iface, up));
    }
    Ok(out)
}

fn global(per_sim: usize, sim: usize, local: &str) -> String {
    format!("leaf{}", sim * per_sim + procs::leaf_number(local))
}

/// The control APIs of every sim, addressed by global leaf names.
pub struct Controls {
    per_sim: usize,
    conns: Vec<Conn>,
}

impl Controls {
    pub async fn link(&mut self, leaf: &str, iface: &str, up: bool) -> Result<Applied, String> {
        let (i, local) = locate(self.per_sim, self.conns.len(), leaf).ok_or_else(|| format!("no sim serves {leaf}"))?;
        crate::scenarios::link(&mut self.conns[i], &local, iface, up).await
    }

    /// Several links in one request per sim; the moments each was applied, in `links` order.
    pub async fn links(&mut self, links: &[(&str, &str, bool)]) -> Result<Vec<Applied>, String> {
        let mut out = vec![None; links.len()];
        let split = per_sim(self.per_sim, self.conns.len(), links)?;
        for (conn, (positions, batch)) in self.conns.iter_mut().zip(split) {
            if batch.is_empty() {
                continue;
            }
            for (k, a) in positions.into_iter().zip(crate::scenarios::links(conn, &batch).await?) {
                out[k] = Some(a);
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Every sim's Set log, with `node` renamed to the global leaf name.
    pub async fn sets(&mut self) -> Result<Vec<SetRecord>, String> {
        let mut all = Vec::new();
        for (i, c) in self.conns.iter_mut().enumerate() {
            for mut s in crate::scenarios::sets(c).await? {
                s.node = global(self.per_sim, i, &s.node);
                all.push(s);
            }
        }
        Ok(all)
    }

    /// How many Sets every sim logged (cheap to poll; `sets` fetches the records).
    pub async fn sets_count(&mut self) -> Result<usize, String> {
        let mut n = 0;
        for c in &mut self.conns {
            n += crate::scenarios::sets_count(c).await?;
        }
        Ok(n)
    }

    pub async fn clear_sets(&mut self) -> Result<(), String> {
        for c in &mut self.conns {
            crate::scenarios::clear_sets(c).await?;
        }
        Ok(())
    }

    /// Opens every connection now (a request each), so a later burst is not a connect burst.
    pub async fn warm(&mut self) -> Result<(), String> {
        for c in &mut self.conns {
            c.get("/v1/now").await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet_of(sizes: &[usize], per_sim: usize) -> Fleet {
        // Sims without processes: only the naming is under test.
        let sims = sizes
            .iter()
            .map(|&n| procs::fake_sim((1..=n).map(|k| (format!("leaf{k}"), 1000 + k as u16)).collect()))
            .collect();
        Fleet { sims, per_sim }
    }

    #[tokio::test]
    async fn global_names_map_to_the_sim_that_serves_them_and_back() {
        let f = fleet_of(&[3, 2], 3);
        assert_eq!(f.locate("leaf1"), Some((0, "leaf1".into())));
        assert_eq!(f.locate("leaf3"), Some((0, "leaf3".into())));
        assert_eq!(f.locate("leaf4"), Some((1, "leaf1".into())));
        assert_eq!(f.locate("leaf5"), Some((1, "leaf2".into())));
        assert_eq!(f.locate("leaf7"), None);
        assert_eq!(f.locate("leaf0"), None);
        let names: Vec<String> = f.leaves().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["leaf1", "leaf2", "leaf3", "leaf4", "leaf5"]);
        assert_eq!(f.port("leaf5"), Some(1002));
        f.stop().await;
    }

    #[test]
    fn a_batch_of_links_splits_per_sim_in_order_and_keeps_its_positions() {
        let links = [("leaf4", "e49", false), ("leaf1", "e49", false), ("leaf5", "e50", true), ("leaf2", "e50", false)];
        let split = per_sim(3, 2, &links).unwrap();
        assert_eq!(split[0], (vec![1, 3], vec![("leaf1".into(), "e49", false), ("leaf2".into(), "e50", false)]));
        assert_eq!(split[1], (vec![0, 2], vec![("leaf1".into(), "e49", false), ("leaf2".into(), "e50", true)]));
        assert_eq!(per_sim(3, 2, &[("leaf7", "e49", false)]).unwrap_err(), "no sim serves leaf7");
    }
}
