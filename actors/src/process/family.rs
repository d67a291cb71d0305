//! An instance's family: its process, everything in its process group, every descendant, and
//! every orphaned descendant that was reparented to the daemon (the daemon is a child
//! subreaper) and still carries the run token in its environment. Signalling the family is
//! how a stop reaches processes that called `setsid` or double-forked.

use std::collections::{HashMap, HashSet};

use procfs::process::all_processes;
use rustix::process::{Pid, Signal, kill_process};

use super::identity;

/// One process from /proc, with what the family walk needs.
struct ProcInfo {
    ppid: u32,
    pgrp: u32,
    zombie: bool,
}

fn snapshot() -> HashMap<u32, ProcInfo> {
    let Ok(procs) = all_processes() else {
        return HashMap::new();
    };
    procs
        .filter_map(|p| p.ok())
        .filter_map(|p| {
            let stat = p.stat().ok()?;
            Some((
                stat.pid as u32,
                ProcInfo {
                    ppid: stat.ppid as u32,
                    pgrp: stat.pgrp as u32,
                    zombie: stat.state == 'Z',
                },
            ))
        })
        .collect()
}

fn has_token(pid: u32, token: &str) -> bool {
    procfs::process::Process::new(pid as i32)
        .ok()
        .and_then(|p| identity::run_token(&p))
        .is_some_and(|t| t == token)
}

/// Live (non-zombie) members of the family of one run: `root` (its live main process, if it
/// still runs), the process group `pgid`, their descendants, and orphans carrying `token`.
/// Once the main process is gone its pid may be reused, so group members must then carry the
/// token too.
pub fn members(root: Option<u32>, pgid: u32, token: &str) -> Vec<u32> {
    let procs = snapshot();
    let daemon = std::process::id();
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&pid, info) in &procs {
        children.entry(info.ppid).or_default().push(pid);
    }
    let mut seeds: Vec<u32> = root.into_iter().collect();
    seeds.extend(
        procs
            .iter()
            .filter(|&(&p, i)| i.pgrp == pgid && (root.is_some() || has_token(p, token)))
            .map(|(&p, _)| p),
    );
    // Orphans reparented to the daemon: ours if they carry the token.
    if let Some(orphans) = children.get(&daemon) {
        seeds.extend(orphans.iter().copied().filter(|&p| has_token(p, token)));
    }
    let mut family = HashSet::new();
    while let Some(pid) = seeds.pop() {
        if pid == daemon || !procs.contains_key(&pid) || !family.insert(pid) {
            continue;
        }
        if let Some(kids) = children.get(&pid) {
            seeds.extend(kids);
        }
    }
    family
        .into_iter()
        .filter(|p| procs.get(p).is_some_and(|i| !i.zombie))
        .collect()
}

/// Sends `signal` to each pid; returns how many were signalled.
pub fn signal_all(pids: &[u32], signal: i32) -> u32 {
    let Some(sig) = Signal::from_named_raw(signal) else {
        return 0;
    };
    pids.iter()
        .filter_map(|&p| Pid::from_raw(p as i32))
        .filter(|&p| kill_process(p, sig).is_ok())
        .count() as u32
}
