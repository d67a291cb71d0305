//! A process and its descendants, read from those processes' own /proc entries, never from a
//! scan of the machine: one `stat` line per process (its threads folded in: the kernel sums
//! them for the thread group), the `children` list of each of its threads, and the orphans
//! reparented to the daemon (it is child subreaper). A look costs in proportion to the family
//! looked at, whatever else runs on the machine.

use std::collections::HashSet;

use super::reaper::Managed;

/// What one `/proc/PID/stat` line says of a process (all its threads together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    /// `R`, `S`, `Z`...
    pub state: char,
    pub pgrp: u32,
    /// User + system CPU time of every thread, in clock ticks.
    pub ticks: u64,
    pub threads: u32,
    /// When it started, in clock ticks after boot.
    pub start: u64,
    /// Resident pages (VmRSS).
    pub rss_pages: u64,
}

impl Stat {
    pub fn zombie(&self) -> bool {
        self.state == 'Z'
    }
}

/// Parses a stat line. The command name (field 2) may hold spaces and parentheses: the
/// fields after it start after its last `)`.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let (head, rest) = line.rsplit_once(')')?;
    let pid = head.split_once(' ')?.0.trim().parse().ok()?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // Field n of proc(5) is fields[n - 3].
    let num = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    Some(Stat {
        pid,
        state: fields.first()?.chars().next()?,
        pgrp: num(5)? as u32,
        ticks: num(14)? + num(15)?,
        threads: num(20)? as u32,
        start: num(22)?,
        rss_pages: num(24)?,
    })
}

/// `pid`'s stat, or `None` once it is gone.
pub fn stat(pid: u32) -> Option<Stat> {
    let line = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&line)
}

/// Parses a `children` file: pids separated by spaces.
fn pids(text: &str) -> impl Iterator<Item = u32> + '_ {
    text.split_ascii_whitespace().filter_map(|p| p.parse().ok())
}

/// The children of process `pid` (every thread's: a child belongs to the thread that forked
/// it). A single-threaded process needs one read.
pub fn children(pid: u32, threads: u32) -> Vec<u32> {
    if threads <= 1 {
        let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"));
        return text.map(|t| pids(&t).collect()).unwrap_or_default();
    }
    threads_children(&format!("/proc/{pid}/task"))
}

fn threads_children(task_dir: &str) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(task_dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for task in tasks.filter_map(|t| t.ok()) {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            found.extend(pids(&text));
        }
    }
    found
}

/// The daemon's own children (every thread's).
pub fn own_children() -> Vec<u32> {
    threads_children("/proc/self/task")
}

/// The daemon's children that it did not spawn: descendants of apps whose parent died.
pub fn orphans(managed: &Managed) -> Vec<u32> {
    own_children()
        .into_iter()
        .filter(|&p| !managed.contains(p))
        .collect()
}

/// `seeds` and all their descendants, each once, with their stats (gone ones left out).
pub fn family(seeds: impl IntoIterator<Item = u32>) -> Vec<Stat> {
    let mut stack: Vec<u32> = seeds.into_iter().collect();
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    while let Some(pid) = stack.pop() {
        if !seen.insert(pid) {
            continue;
        }
        let Some(stat) = stat(pid) else { continue };
        stack.extend(children(pid, stat.threads));
        found.push(stat);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_with_a_hostile_name_parses() {
        let line = "4242 (a) (b c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 \
                    9 0 123456 1000000 250 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0";
        let stat = parse_stat(line).unwrap();
        assert_eq!(
            stat,
            Stat {
                pid: 4242,
                state: 'S',
                pgrp: 4242,
                ticks: 10,
                threads: 9,
                start: 123456,
                rss_pages: 250,
            }
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 0"), None);
    }

    #[test]
    fn a_family_is_the_process_its_children_and_theirs() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .spawn()
            .unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut family = Vec::new();
        while std::time::Instant::now() < deadline {
            family = super::family([pid]);
            if family.len() == 3 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let members: Vec<u32> = family.iter().map(|s| s.pid).collect();
        let adopted_by_us = own_children().contains(&pid);
        for s in &family {
            rustix::process::kill_process(
                rustix::process::Pid::from_raw(s.pid as i32).unwrap(),
                rustix::process::Signal::KILL,
            )
            .ok();
        }
        child.wait().ok();
        assert_eq!(members.len(), 3, "sh and its two sleeps: {members:?}");
        assert_eq!(members[0], pid);
        let me = stat(std::process::id()).unwrap();
        assert!(me.threads >= 1 && me.rss_pages > 0 && !me.zombie());
        assert!(adopted_by_us, "the test's child is among its own children");
    }
}
