//! The sampler: one thread that measures each managed instance and its process tree once per
//! interval, reading only those processes' own /proc entries (a process's threads are folded
//! into it, never counted as processes), keeps their histories, and applies
//! `max_memory_restart` at every sample: a breach is sent to the instance's actor at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix::prelude::*;
use pmx_core::Millis;
use pmx_core::metrics::{Breach, Figure, History, MemoryPolicy, Sample};
use pmx_core::protocol::{Reading, RecentSamples};

use crate::clock::now_ms;
use crate::process::reaper::Managed;
use crate::process::tree;

/// An instance's memory policy was breached by its run `pid`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct MemoryBreach {
    pub id: u32,
    pub pid: u32,
    pub breach: Breach,
}

/// One measured instance.
struct Watched {
    pid: u32,
    policy: MemoryPolicy,
    actor: Recipient<MemoryBreach>,
    history: History,
    /// The breach was reported for this run: the restart is under way.
    reported: bool,
}

/// The sampler's handle: apps register their runs; readers get figures.
#[derive(Clone)]
pub struct Sampler {
    board: Arc<Mutex<HashMap<u32, Watched>>>,
    interval: Duration,
}

/// An instance's latest figures and averages, for views.
#[derive(Debug, Clone, Copy, Default)]
pub struct Figures {
    pub latest: Sample,
    /// CPU % and memory averaged over 1, 5 and 15 minutes.
    pub cpu_avg: [f32; 3],
    pub memory_avg: [u64; 3],
}

const WINDOWS: [Millis; 3] = [60_000, 300_000, 900_000];

/// The daemon's children are listed for orphans, and processes that had no children are
/// asked again, at every this many samples.
const ORPHANS_EVERY: u64 = 5;

/// Readings per instance a chart opened now gets at most (monit keeps 120).
const RECENT_READINGS: usize = 120;

impl Sampler {
    /// Starts the sampling thread.
    pub fn start(interval: Duration, managed: Managed) -> std::io::Result<Self> {
        let sampler = Sampler {
            board: Arc::default(),
            interval,
        };
        let worker = sampler.clone();
        std::thread::Builder::new()
            .name("pmx-sampler".into())
            .spawn(move || worker.run(managed))?;
        Ok(sampler)
    }

    fn board(&self) -> MutexGuard<'_, HashMap<u32, Watched>> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.board.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Measures instance `id`'s run `pid` from now on (a new history).
    pub fn watch(&self, id: u32, pid: u32, policy: MemoryPolicy, actor: Recipient<MemoryBreach>) {
        let watched = Watched {
            pid,
            policy,
            actor,
            history: History::default(),
            reported: false,
        };
        self.board().insert(id, watched);
    }

    /// Stops measuring instance `id`, if its run is still `pid`.
    pub fn unwatch(&self, id: u32, pid: u32) {
        let mut board = self.board();
        if board.get(&id).is_some_and(|w| w.pid == pid) {
            board.remove(&id);
        }
    }

    pub fn figures(&self, id: u32) -> Option<Figures> {
        let board = self.board();
        let h = &board.get(&id)?.history;
        let now = now_ms();
        let latest = *h.latest()?;
        let averages = WINDOWS.map(|w| h.averages(w, now).unwrap_or_default());
        Some(Figures {
            latest,
            cpu_avg: averages.map(|(cpu, _)| cpu as f32),
            memory_avg: averages.map(|(_, memory)| memory as u64),
        })
    }

    /// Every measured instance's last minute of samples, for charts opened now: at most
    /// `RECENT_READINGS` each, so a short sample interval cannot swell monit's first frame.
    pub fn recent(&self) -> Vec<RecentSamples> {
        let mut recent: Vec<RecentSamples> = self
            .board()
            .iter()
            .map(|(&id, w)| {
                let newest = w.history.recent(RECENT_READINGS);
                let samples = newest.map(|s| Reading(s.at, s.tree_cpu, s.tree_memory));
                RecentSamples {
                    id,
                    samples: samples.collect(),
                }
            })
            .collect();
        recent.sort_by_key(|r| r.id);
        recent
    }

    /// The mean over `window_ms` of `figure` for each of `ids` that has samples.
    pub fn averages(&self, ids: &[u32], figure: Figure, window_ms: Millis) -> Vec<f64> {
        let board = self.board();
        let now = now_ms();
        ids.iter()
            .filter_map(|id| board.get(id)?.history.average(figure, window_ms, now))
            .collect()
    }

    /// The memory growth (bytes per hour) over `window_ms` of each of `ids` that has enough
    /// samples.
    pub fn growth(&self, ids: &[u32], window_ms: Millis) -> Vec<f64> {
        let board = self.board();
        let now = now_ms();
        ids.iter()
            .filter_map(|id| {
                board
                    .get(id)?
                    .history
                    .memory_growth_per_hour(window_ms, now)
            })
            .collect()
    }

    /// A process not sampled yet (it just started): its memory read now, so a view never
    /// shows 0 for a live process.
    pub fn first_look(pid: u32) -> Figures {
        let memory = tree::stat(pid).map_or(0, |s| s.rss_pages * procfs::page_size());
        Figures {
            latest: Sample {
                at: now_ms(),
                memory,
                tree_memory: memory,
                processes: 1,
                ..Sample::default()
            },
            ..Figures::default()
        }
    }

    fn run(self, managed: Managed) {
        let mut cpu = CpuMeter::default();
        // The files of the processes sampled stay open from one sample to the next.
        let mut proc = tree::Reader::default();
        let mut adopted: Vec<u32> = Vec::new();
        for round in 0u64.. {
            std::thread::sleep(self.interval);
            // Every handle is gone (the daemon is done): so is this thread.
            if Arc::strong_count(&self.board) == 1 {
                return;
            }
            let roots: Vec<(u32, u32)> = self.board().iter().map(|(&id, w)| (id, w.pid)).collect();
            if roots.is_empty() {
                continue;
            }
            // Orphans reparented to the daemon count in the tree of the run whose process
            // group they are in. They are rare: the daemon's children are listed every few
            // samples, the orphans found are read at every one. So are the children of
            // processes that had none (most apps fork nothing): a new child of theirs counts
            // from the next full sample on.
            let full = round % ORPHANS_EVERY == 0;
            if full {
                adopted = proc.orphans(&managed);
            }
            let orphans: Vec<tree::Stat> = adopted.iter().filter_map(|&p| proc.stat(p)).collect();
            let samples: Vec<(u32, u32, Sample)> = roots
                .into_iter()
                .filter_map(|(id, root)| {
                    let adopted = orphans.iter().filter(|o| o.pgrp == root).map(|o| o.pid);
                    let seeds = std::iter::once(root).chain(adopted);
                    let family = proc.family_looking(seeds, full);
                    Some((id, root, cpu.sample(root, &family)?))
                })
                .collect();
            proc.forget_unread();
            cpu.forget_the_rest();
            self.record(samples);
        }
    }

    /// Keeps one sample per instance, and reports breaches. The board was not held while
    /// reading: a sample of a run that was replaced meanwhile is dropped.
    fn record(&self, samples: Vec<(u32, u32, Sample)>) {
        let mut board = self.board();
        for (id, pid, sample) in samples {
            let Some(watched) = board.get_mut(&id).filter(|w| w.pid == pid) else {
                continue;
            };
            watched.history.push(sample);
            if watched.reported || !watched.policy.is_set() {
                continue;
            }
            if let Some(breach) = watched.policy.breach(&watched.history, sample.at) {
                watched.reported = true;
                watched.actor.do_send(MemoryBreach {
                    id,
                    pid: watched.pid,
                    breach,
                });
            }
        }
    }
}

/// CPU % from the change of each process's ticks since the previous sample (or since it
/// started, the first time it is seen).
#[derive(Default)]
struct CpuMeter {
    /// By pid: (start time, ticks, when read, in seconds after boot) of the previous sample.
    previous: HashMap<u32, (u64, u64, f64)>,
    current: HashMap<u32, (u64, u64, f64)>,
}

impl CpuMeter {
    /// The sample of the family of `root`, in any order; `None` when `root` is not in it
    /// (it is gone).
    fn sample(&mut self, root: u32, family: &[tree::Stat]) -> Option<Sample> {
        family.iter().find(|s| s.pid == root)?;
        let now = seconds_after_boot();
        let page = procfs::page_size();
        let mut sample = Sample {
            at: now_ms(),
            ..Sample::default()
        };
        for s in family.iter().filter(|s| !s.zombie()) {
            let cpu = self.percent(s, now);
            let memory = s.rss_pages * page;
            if s.pid == root {
                (sample.cpu, sample.memory) = (cpu, memory);
            }
            sample.tree_cpu += cpu;
            sample.tree_memory += memory;
            sample.processes += 1;
        }
        Some(sample)
    }

    fn percent(&mut self, s: &tree::Stat, now: f64) -> f32 {
        let ticks = ticks_per_second();
        let (since_ticks, since) = match self.previous.get(&s.pid) {
            Some(&(start, before, at)) if start == s.start => (before, at),
            _ => (0, s.start as f64 / ticks),
        };
        self.current.insert(s.pid, (s.start, s.ticks, now));
        let elapsed = now - since;
        if elapsed <= 0.0 {
            return 0.0;
        }
        let used = s.ticks.saturating_sub(since_ticks) as f64 / ticks;
        (used / elapsed * 100.0) as f32
    }

    /// Processes not seen in this round are forgotten.
    fn forget_the_rest(&mut self) {
        self.previous = std::mem::take(&mut self.current);
    }
}

fn ticks_per_second() -> f64 {
    procfs::ticks_per_second() as f64
}

/// The clock /proc's start times count from (boot, suspend included). Through libc: rustix's
/// own vDSO lookup faults under valgrind.
fn seconds_after_boot() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec to write to; CLOCK_BOOTTIME exists on every Linux the
    // daemon runs on (2.6.39+). On an error `t` stays zero and CPU figures read 0.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(pid: u32, start: u64, ticks: u64) -> tree::Stat {
        tree::Stat {
            pid,
            state: 'S',
            ppid: 1,
            pgrp: pid,
            ticks,
            threads: 7,
            start,
            rss_pages: 10,
        }
    }

    #[test]
    fn cpu_is_the_change_of_ticks_over_the_time_between_samples() {
        let hz = ticks_per_second();
        let mut meter = CpuMeter::default();
        // First seen 2 s after it started, having used 1 s: 50 % since its start.
        let first = stat(7, (100.0 * hz) as u64, hz as u64);
        assert!((meter.percent(&first, 102.0) - 50.0).abs() < 0.5);
        meter.forget_the_rest();
        // 1.5 s of CPU (several threads) in the next 1 s: 150 %, not once per thread.
        let next = stat(7, first.start, first.ticks + (1.5 * hz) as u64);
        assert!((meter.percent(&next, 103.0) - 150.0).abs() < 0.5);
        meter.forget_the_rest();
        // The pid was reused by a process that started later: measured from its own start
        // (0.75 s used in 1.5 s), not against the previous process's ticks (which would
        // read 0).
        let reused = stat(7, (102.5 * hz) as u64, (0.75 * hz) as u64);
        assert!((meter.percent(&reused, 104.0) - 50.0).abs() < 0.5);
    }

    #[test]
    fn a_sample_folds_the_family_and_skips_zombies() {
        let mut meter = CpuMeter::default();
        let page = procfs::page_size();
        let mut zombie = stat(9, 0, 0);
        zombie.state = 'Z';
        let mut root = stat(7, 0, 0);
        root.rss_pages = 30;
        // An adopted orphan may come first: the walk starts from every seed.
        let family = [stat(8, 0, 0), zombie, root];
        let sample = meter.sample(7, &family).unwrap();
        assert_eq!(sample.memory, 30 * page);
        assert_eq!(sample.tree_memory, 40 * page);
        assert_eq!(sample.processes, 2);
        assert!(
            meter.sample(6, &family).is_none(),
            "no sample once the root is gone"
        );
    }
}
