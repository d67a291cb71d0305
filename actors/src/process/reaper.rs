//! Reaps zombies the daemon inherits as child subreaper: orphaned descendants of apps are
//! reparented to the daemon and must be waited for. The daemon never calls `waitpid(-1)`:
//! the exit status of every process the daemon spawned (the `managed` set) belongs to its
//! app actor, which waits for it through its pidfd, so only other children are waited for,
//! each by its pid.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::process::{Pid, WaitOptions, waitpid};
use tokio::signal::unix::{SignalKind, signal};

/// Pids of the app processes their actors wait for.
#[derive(Clone, Default)]
pub struct Managed(Arc<Mutex<HashSet<u32>>>);

impl Managed {
    pub fn insert(&self, pid: u32) {
        if let Ok(mut set) = self.0.lock() {
            set.insert(pid);
        }
    }

    pub fn remove(&self, pid: u32) {
        if let Ok(mut set) = self.0.lock() {
            set.remove(&pid);
        }
    }

    /// Runs `spawn` with the set locked, and adds the pid it returns: the reaper, which asks
    /// the set first, never finds the new child unmanaged, however soon it ends.
    pub fn holding<T, E>(&self, spawn: impl FnOnce() -> Result<(u32, T), E>) -> Result<T, E> {
        let mut set = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (pid, spawned) = spawn()?;
        set.insert(pid);
        Ok(spawned)
    }

    pub fn contains(&self, pid: u32) -> bool {
        self.0.lock().map(|s| s.contains(&pid)).unwrap_or(true)
    }
}

/// Waits (without blocking) for every child that is not managed; returns how many were reaped.
pub fn reap_orphans(managed: &Managed) -> usize {
    super::tree::orphans(managed)
        .into_iter()
        .filter_map(|pid| Pid::from_raw(pid as i32))
        .filter(|&pid| matches!(waitpid(Some(pid), WaitOptions::NOHANG), Ok(Some(_))))
        .count()
}

/// Runs forever on the daemon's thread: reaps on every SIGCHLD, and every few seconds in case
/// a signal was coalesced.
pub async fn run(managed: Managed) {
    let mut sigchld = signal(SignalKind::child()).ok();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        match sigchld.as_mut() {
            Some(s) => {
                tokio::select! {
                    _ = s.recv() => {}
                    _ = tick.tick() => {}
                }
            }
            None => {
                tick.tick().await;
            }
        }
        reap_orphans(&managed);
    }
}
