//! The sampler: one thread that refreshes every process on the machine once per interval
//! (sysinfo, one read of /proc for all), measures each managed instance and its process tree,
//! keeps their histories, and applies `max_memory_restart` at every sample: a breach is sent
//! to the instance's actor at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix::prelude::*;
use pmx_core::Millis;
use pmx_core::metrics::{Breach, Figure, History, MemoryPolicy, Sample};
use pmx_core::protocol::{Reading, RecentSamples};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::clock::now_ms;

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

/// Readings per instance a chart opened now gets at most (monit keeps 120).
const RECENT_READINGS: usize = 120;

impl Sampler {
    /// Starts the sampling thread.
    pub fn start(interval: Duration) -> std::io::Result<Self> {
        let sampler = Sampler {
            board: Arc::default(),
            interval,
        };
        let worker = sampler.clone();
        std::thread::Builder::new()
            .name("pmx-sampler".into())
            .spawn(move || worker.run())?;
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
        let avg = |figure, w| h.average(figure, w, now).unwrap_or(0.0);
        Some(Figures {
            latest,
            cpu_avg: WINDOWS.map(|w| avg(Figure::Cpu, w) as f32),
            memory_avg: WINDOWS.map(|w| avg(Figure::Memory, w) as u64),
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
        let memory = procfs::process::Process::new(pid as i32)
            .and_then(|p| p.statm())
            .map_or(0, |m| m.resident * procfs::page_size());
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

    fn run(self) {
        let Ok(mut system) = System::new() else {
            eprintln!("pmx: the sampler cannot read processes: no metrics");
            return;
        };
        let kind = ProcessRefreshKind::nothing().with_cpu().with_memory();
        loop {
            std::thread::sleep(self.interval);
            if self.board().is_empty() {
                continue;
            }
            system.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
            self.record(&system);
        }
    }

    /// Turns one refresh into a sample per instance, and reports breaches.
    fn record(&self, system: &System) {
        let mut children: HashMap<Pid, Vec<Pid>> = HashMap::new();
        for (&pid, process) in system.processes() {
            if let Some(parent) = process.parent() {
                children.entry(parent).or_default().push(pid);
            }
        }
        let now = now_ms();
        let mut board = self.board();
        for (&id, watched) in board.iter_mut() {
            let root = Pid::from_u32(watched.pid);
            let Some(process) = system.process(root) else {
                continue;
            };
            let mut sample = Sample {
                at: now,
                cpu: process.cpu_usage(),
                memory: process.memory(),
                ..Sample::default()
            };
            let mut stack = vec![root];
            while let Some(pid) = stack.pop() {
                if let Some(p) = system.process(pid) {
                    sample.tree_cpu += p.cpu_usage();
                    sample.tree_memory += p.memory();
                    sample.processes += 1;
                }
                stack.extend(children.get(&pid).into_iter().flatten());
            }
            watched.history.push(sample);
            if watched.reported || !watched.policy.is_set() {
                continue;
            }
            if let Some(breach) = watched.policy.breach(&watched.history, now) {
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
