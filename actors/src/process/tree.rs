//! A process and its descendants, read from those processes' own /proc entries, never from a
//! scan of the machine: one `stat` line per process (its threads folded in: the kernel sums
//! them for the thread group), the `children` list of each of its threads, and the orphans
//! reparented to the daemon (it is child subreaper). A look costs in proportion to the family
//! looked at, whatever else runs on the machine.

use std::collections::{HashMap, HashSet};
use std::fs::File;

use super::reaper::Managed;

/// What one `/proc/PID/stat` line says of a process (all its threads together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    /// `R`, `S`, `Z`...
    pub state: char,
    pub ppid: u32,
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
    // Field n of proc(5) is the (n - 3)th after the name; read in order, nothing collected
    // (the sampler parses one line per process per second).
    let mut fields = rest.split_ascii_whitespace();
    let mut at = 3;
    let mut num = |n: usize| -> Option<u64> {
        let field = fields.nth(n - at)?;
        at = n + 1;
        field.parse().ok()
    };
    let state = rest.trim_start().chars().next()?;
    let ppid = num(4)? as u32;
    let pgrp = num(5)? as u32;
    let ticks = num(14)? + num(15)?;
    let threads = num(20)? as u32;
    let start = num(22)?;
    let rss_pages = num(24)?;
    Some(Stat {
        pid,
        state,
        ppid,
        pgrp,
        ticks,
        threads,
        start,
        rss_pages,
    })
}

/// `pid`'s stat, or `None` once it is gone.
pub fn stat(pid: u32) -> Option<Stat> {
    Reader::default().stat(pid)
}

/// Whether a read of a /proc file that returned `n` bytes into `room` got all of it, so the
/// read at the next offset (which makes the kernel render the file again, as dear as the
/// first read) can be skipped. These files are seq_files: a read stops short of `room` only
/// at their end, or when the kernel's own page buffer is full, which happens within one
/// record (at most a pid) of 4,096 bytes.
fn is_whole(n: usize, room: usize) -> bool {
    n < room && n < 4096 - 64
}

/// Parses a `children` file: pids separated by spaces.
fn pids(text: &[u8]) -> impl Iterator<Item = u32> + '_ {
    text.split(|b| b.is_ascii_whitespace())
        .filter_map(|p| std::str::from_utf8(p).ok()?.parse().ok())
}

/// The daemon's children that it did not spawn: descendants of apps whose parent died.
pub fn orphans(managed: &Managed) -> Vec<u32> {
    Reader::default().orphans(managed)
}

/// `seeds` and all their descendants, each once, with their stats (gone ones left out).
pub fn family(seeds: impl IntoIterator<Item = u32>) -> Vec<Stat> {
    Reader::default().family(seeds)
}

/// Files a `Reader` keeps open at most (the rest are opened for each read).
const KEPT_FILES: usize = 256;

/// Reads /proc files, keeping them open when it lives across samples: a kept file is read
/// again from its start (the kernel renders it anew) with no path walk and no open. A kept
/// file of a process that ended reads as an error or empty, never as another process that
/// reused the pid.
#[derive(Default)]
pub struct Reader {
    files: HashMap<ProcFile, File>,
    /// The files read since the last `forget_unread`.
    read: HashSet<ProcFile>,
    /// Whether each process had children when its lists were last read.
    had_children: HashMap<u32, bool>,
    buffer: Vec<u8>,
}

/// A file of /proc: `/proc/PID/stat`, or `/proc/PID/task/TID/children`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ProcFile {
    Stat(u32),
    Children(u32, u32),
}

impl ProcFile {
    fn pid(self) -> u32 {
        match self {
            ProcFile::Stat(pid) | ProcFile::Children(pid, _) => pid,
        }
    }

    fn path(self) -> String {
        match self {
            ProcFile::Stat(pid) => format!("/proc/{pid}/stat"),
            ProcFile::Children(pid, tid) => format!("/proc/{pid}/task/{tid}/children"),
        }
    }
}

impl Reader {
    /// The contents of `file`, or `None` if it cannot be read. At most `KEPT_FILES` stay
    /// open: every descriptor kept is one more that each spawn copies and closes, and one
    /// fewer for the apps' pipes and logs.
    fn read(&mut self, file: ProcFile) -> Option<&[u8]> {
        let opened;
        let open = match self.files.get(&file) {
            Some(kept) => kept,
            None => {
                let new = File::open(file.path()).ok()?;
                if self.files.len() < KEPT_FILES {
                    self.files.entry(file).or_insert(new)
                } else {
                    opened = new;
                    &opened
                }
            }
        };
        self.buffer.clear();
        let mut at = 0;
        loop {
            if self.buffer.capacity() - self.buffer.len() < 512 {
                self.buffer.reserve(4096);
            }
            let spare = self.buffer.spare_capacity_mut();
            let room = spare.len();
            let n = match rustix::io::pread(open, spare, at) {
                Ok((filled, _)) => filled.len(),
                Err(_) => {
                    self.files.remove(&file);
                    return None;
                }
            };
            // SAFETY: pread initialised the first `n` spare bytes.
            unsafe { self.buffer.set_len(self.buffer.len() + n) };
            at += n as u64;
            if n == 0 || is_whole(n, room) {
                break;
            }
        }
        self.read.insert(file);
        Some(&self.buffer)
    }

    /// `pid`'s stat, or `None` once it is gone.
    pub fn stat(&mut self, pid: u32) -> Option<Stat> {
        let line = self.read(ProcFile::Stat(pid))?;
        parse_stat(std::str::from_utf8(line).ok()?)
    }

    /// The children of process `pid` (every thread's: a child belongs to the thread that
    /// forked it). A single-threaded process needs one read.
    pub fn children(&mut self, pid: u32, threads: u32) -> Vec<u32> {
        if threads <= 1 {
            return self.children_of_task(pid, pid);
        }
        self.threads_children(pid)
    }

    fn children_of_task(&mut self, pid: u32, tid: u32) -> Vec<u32> {
        self.read(ProcFile::Children(pid, tid))
            .map(|t| pids(t).collect())
            .unwrap_or_default()
    }

    fn threads_children(&mut self, pid: u32) -> Vec<u32> {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return Vec::new();
        };
        let tids: Vec<u32> = tasks
            .filter_map(|t| t.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        tids.into_iter()
            .flat_map(|tid| self.children_of_task(pid, tid))
            .collect()
    }

    /// The daemon's children that it did not spawn: descendants of apps whose parent died.
    pub fn orphans(&mut self, managed: &Managed) -> Vec<u32> {
        self.threads_children(std::process::id())
            .into_iter()
            .filter(|&p| !managed.contains(p))
            .collect()
    }

    /// `seeds` and all their descendants, each once, with their stats (gone ones left out).
    pub fn family(&mut self, seeds: impl IntoIterator<Item = u32>) -> Vec<Stat> {
        self.family_looking(seeds, true)
    }

    /// As `family`, but with `childless_too` false, the processes this reader saw without
    /// children the last time are not asked again (half the reads of a sample of apps that
    /// fork nothing); processes it has not seen yet always are.
    pub fn family_looking(
        &mut self,
        seeds: impl IntoIterator<Item = u32>,
        childless_too: bool,
    ) -> Vec<Stat> {
        let mut stack: Vec<u32> = seeds.into_iter().collect();
        let mut seen = HashSet::new();
        let mut found = Vec::new();
        while let Some(pid) = stack.pop() {
            if !seen.insert(pid) {
                continue;
            }
            let Some(stat) = self.stat(pid) else { continue };
            if childless_too || self.had_children.get(&pid).is_none_or(|&had| had) {
                let children = self.children(pid, stat.threads);
                self.had_children.insert(pid, !children.is_empty());
                stack.extend(children);
            }
            found.push(stat);
        }
        found
    }

    /// Closes the files not read since the last call, and forgets the processes whose stat
    /// was not read: they left the families. A `children` file a sample skipped stays open
    /// while its process's stat is read.
    pub fn forget_unread(&mut self) {
        let read = &self.read;
        self.files
            .retain(|file, _| read.contains(file) || read.contains(&ProcFile::Stat(file.pid())));
        self.had_children
            .retain(|&pid, _| read.contains(&ProcFile::Stat(pid)));
        self.read.clear();
    }
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
                ppid: 1,
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

    /// Ends the processes a test started, by pid.
    fn kill_all(family: &[Stat]) {
        for s in family {
            if let Some(pid) = rustix::process::Pid::from_raw(s.pid as i32) {
                rustix::process::kill_process(pid, rustix::process::Signal::KILL).ok();
            }
        }
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
        let adopted_by_us = Reader::default()
            .threads_children(std::process::id())
            .contains(&pid);
        kill_all(&family);
        child.wait().ok();
        assert_eq!(members.len(), 3, "sh and its two sleeps: {members:?}");
        assert_eq!(members[0], pid);
        let me = stat(std::process::id()).unwrap();
        assert!(me.threads >= 1 && me.rss_pages > 0 && !me.zombie());
        assert!(adopted_by_us, "the test's child is among its own children");
    }

    #[test]
    fn a_children_list_longer_than_the_kernels_page_is_read_whole() {
        // Children until their pids take more than 5,000 bytes, so the kernel hands the list
        // over in several reads, the first of them short of the buffer.
        let mut children = Vec::new();
        let mut bytes = 0;
        while bytes < 5000 && children.len() < 3000 {
            match std::process::Command::new("sleep").arg("30").spawn() {
                Ok(child) => {
                    bytes += child.id().to_string().len() + 1;
                    children.push(child);
                }
                Err(_) => break,
            }
        }
        let spawned: HashSet<u32> = children.iter().map(|c| c.id()).collect();
        let mut reader = Reader::default();
        let listed = reader.threads_children(std::process::id());
        let listed_again = reader.threads_children(std::process::id());
        let size: usize = listed.iter().map(|p| p.to_string().len() + 1).sum();
        for child in &mut children {
            child.kill().ok();
            child.wait().ok();
        }
        assert!(bytes >= 5000, "the test could spawn its children");
        assert!(
            size > 4096,
            "the list spans several kernel pages: {size} bytes"
        );
        let listed: HashSet<u32> = listed.into_iter().collect();
        assert!(spawned.is_subset(&listed), "every child listed");
        let again: HashSet<u32> = listed_again.into_iter().collect();
        assert!(spawned.is_subset(&again), "and again from the kept files");
    }

    #[test]
    fn children_of_a_process_seen_childless_are_looked_for_again_only_when_asked() {
        use std::io::Write;
        // The shell has no child while it reads its line, then forks a sleep.
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "read line; sleep 30; true"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = sh.id();
        let mut reader = Reader::default();
        let before = reader.family_looking([pid], false).len();
        writeln!(sh.stdin.as_mut().unwrap(), "go").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while Reader::default().family([pid]).len() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let skipped = reader.family_looking([pid], false).len();
        reader.forget_unread();
        let kept_open = reader.files.contains_key(&ProcFile::Children(pid, pid));
        let full = reader.family_looking([pid], true);
        let after_full = reader.family_looking([pid], false).len();
        kill_all(&full);
        sh.wait().ok();
        assert_eq!(before, 1, "the shell alone while it reads");
        assert_eq!(skipped, 1, "seen childless: not asked again");
        assert!(
            kept_open,
            "its children file stays open for the next full look"
        );
        assert_eq!(full.len(), 2, "asked: the sleep is found");
        assert_eq!(after_full, 2, "a parent is asked at every look");
    }
}
