//! Telling a process from another that reuses its pid: the kernel's boot id, and the process
//! start time (clock ticks after boot) from /proc.

use std::collections::HashMap;

use pmx_storage::LiveRun;

/// This boot of the kernel; processes of another boot are gone.
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}

/// When `pid` started, in clock ticks after boot; `None` if it is gone or a zombie.
pub fn start_time(pid: u32) -> Option<u64> {
    // One read of /proc/PID/stat (asked at every spawn): no directory handle, no full parse.
    let stat = super::tree::stat(pid)?;
    (!stat.zombie()).then_some(stat.start)
}

/// Whether `pid` is still the process that started at `start` and a child of this one: what
/// a handed-over run must be to be adopted (a process that is not our child cannot be
/// waited for).
pub fn own_child(pid: u32, start: Option<u64>) -> bool {
    super::tree::stat(pid)
        .is_some_and(|s| !s.zombie() && Some(s.start) == start && s.ppid == std::process::id())
}

/// Whether the process the journal recorded still runs (same boot, same pid, same start).
pub fn still_runs(run: &LiveRun, boot: Option<&str>) -> bool {
    let same_boot = matches!((run.boot.as_deref(), boot), (Some(a), Some(b)) if a == b);
    same_boot && run.start_time.is_some() && start_time(run.pid) == run.start_time
}

/// Every live process whose run token says it was started by a daemon of `home`, by
/// instance id (the token is `HOME#DAEMON#ID#RUN`). One scan of /proc.
pub fn tagged_processes(home: &str) -> HashMap<u32, Vec<(u32, u64)>> {
    let mut found: HashMap<u32, Vec<(u32, u64)>> = HashMap::new();
    let Ok(procs) = procfs::process::all_processes() else {
        return found;
    };
    for process in procs.filter_map(|p| p.ok()) {
        let Ok(stat) = process.stat() else { continue };
        if stat.state == 'Z' || stat.pid as u32 == std::process::id() {
            continue;
        }
        let Some(token) = run_token(&process) else {
            continue;
        };
        if let Some(id) = instance_of(&token, home) {
            found
                .entry(id)
                .or_default()
                .push((stat.pid as u32, stat.starttime));
        }
    }
    found
}

/// The run token a process was started with (`PMX_RUN_TOKEN`), if pmx started it.
pub fn run_token(process: &procfs::process::Process) -> Option<String> {
    let environ = process.environ().ok()?;
    let token = environ.get(std::ffi::OsStr::new(super::spawn::TOKEN_VAR))?;
    Some(token.to_string_lossy().into_owned())
}

/// The instance id in a run token of `home`.
fn instance_of(token: &str, home: &str) -> Option<u32> {
    let mut parts = token.rsplitn(4, '#');
    let (_run, id, _daemon, token_home) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (token_home == home).then(|| id.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_home_and_instance() {
        assert_eq!(instance_of("/tmp/h#12.345#7#3", "/tmp/h"), Some(7));
        assert_eq!(instance_of("/tmp/a#b#12.345#7#3", "/tmp/a#b"), Some(7));
        assert_eq!(instance_of("/tmp/h#12.345#7#3", "/tmp/other"), None);
        assert_eq!(instance_of("garbage", "/tmp/h"), None);
    }

    #[test]
    fn a_reused_pid_is_not_the_same_process() {
        let me = std::process::id();
        let boot = boot_id();
        let mine = LiveRun {
            pid: me,
            start_time: start_time(me),
            boot: boot.clone(),
            token: None,
        };
        assert!(still_runs(&mine, boot.as_deref()));
        let reused = LiveRun {
            start_time: mine.start_time.map(|t| t + 1),
            ..mine.clone()
        };
        assert!(!still_runs(&reused, boot.as_deref()));
        let other_boot = LiveRun {
            boot: Some("another boot".into()),
            ..mine.clone()
        };
        assert!(!still_runs(&other_boot, boot.as_deref()));
        let unknown = LiveRun {
            start_time: None,
            ..mine
        };
        assert!(
            !still_runs(&unknown, boot.as_deref()),
            "no start time: cannot prove it is ours"
        );
    }
}
