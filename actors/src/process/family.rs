//! An instance's family: its process, every descendant, and every orphaned descendant that
//! was reparented to the daemon (the daemon is a child subreaper) and is in its process group
//! or still carries the run token in its environment. Signalling the family is how a stop
//! reaches processes that called `setsid` or double-forked.

use rustix::process::{Pid, Signal, kill_process};

use super::reaper::Managed;
use super::{identity, tree};

fn has_token(pid: u32, token: &str) -> bool {
    procfs::process::Process::new(pid as i32)
        .ok()
        .and_then(|p| identity::run_token(&p))
        .is_some_and(|t| t == token)
}

/// Live (non-zombie) members of the family of one run: `root` (its live main process, if it
/// still runs), its descendants, and the orphans reparented to the daemon that belong to the
/// run (in its process group `pgid`, or carrying `token`), with their descendants. Once the
/// main process is gone its pid may be reused as another run's group, so orphans must then
/// carry the token. Reads only the daemon's children and the family itself.
pub fn members(root: Option<u32>, pgid: u32, token: &str, managed: &Managed) -> Vec<u32> {
    let mut seeds: Vec<u32> = root.into_iter().collect();
    seeds.extend(tree::orphans(managed).into_iter().filter(|&p| {
        let in_group = root.is_some() && tree::stat(p).is_some_and(|s| s.pgrp == pgid);
        in_group || has_token(p, token)
    }));
    tree::family(seeds)
        .into_iter()
        .filter(|s| !s.zombie())
        .map(|s| s.pid)
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
