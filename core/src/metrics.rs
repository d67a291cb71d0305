//! What the sampler measures and keeps: one `Sample` per instance per interval, a short
//! `History` (the last minute sample by sample, the last hour minute by minute) to answer
//! averages over any window up to an hour, and the memory verdict of `max_memory_restart`.
//! Pure: time comes in as milliseconds.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::Millis;

/// One measurement of an instance: its own process, and its whole process tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub at: Millis,
    /// % of one core.
    pub cpu: f32,
    /// Resident bytes.
    pub memory: u64,
    pub tree_cpu: f32,
    pub tree_memory: u64,
    /// Processes in the tree (1 when the app forks nothing).
    pub processes: u32,
}

const MINUTE: Millis = 60_000;
/// Samples kept one by one: the last minute (capped for very short intervals).
const RECENT_MS: Millis = MINUTE;
const RECENT_MAX: usize = 1200;
/// Minute buckets kept: an hour.
const MINUTES: usize = 60;

/// A minute's sums, to average over long windows without keeping every sample.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bucket {
    minute: Millis,
    cpu: f64,
    memory: f64,
    count: u32,
}

/// The samples of one run of an instance (a new process starts a new history).
#[derive(Debug, Clone, Default)]
pub struct History {
    recent: VecDeque<Sample>,
    minutes: VecDeque<Bucket>,
    /// When the first sample of this run was taken.
    since: Option<Millis>,
}

/// What an average is taken of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    /// CPU % of the process tree.
    Cpu,
    /// Resident bytes of the process tree.
    Memory,
}

impl History {
    pub fn push(&mut self, sample: Sample) {
        self.since.get_or_insert(sample.at);
        self.recent.push_back(sample);
        while self.recent.len() > RECENT_MAX
            || self
                .recent
                .front()
                .is_some_and(|s| s.at + RECENT_MS < sample.at)
        {
            self.recent.pop_front();
        }
        let minute = sample.at / MINUTE;
        match self.minutes.back_mut() {
            Some(b) if b.minute == minute => {
                b.cpu += sample.tree_cpu as f64;
                b.memory += sample.tree_memory as f64;
                b.count += 1;
            }
            _ => {
                self.minutes.push_back(Bucket {
                    minute,
                    cpu: sample.tree_cpu as f64,
                    memory: sample.tree_memory as f64,
                    count: 1,
                });
                if self.minutes.len() > MINUTES {
                    self.minutes.pop_front();
                }
            }
        }
    }

    pub fn latest(&self) -> Option<&Sample> {
        self.recent.back()
    }

    /// The newest `max` of the samples kept one by one (the last minute), oldest first: what
    /// a chart opened now starts with.
    pub fn recent(&self, max: usize) -> impl Iterator<Item = &Sample> {
        self.recent.range(self.recent.len().saturating_sub(max)..)
    }

    /// How long this run has been sampled.
    pub fn span(&self, now: Millis) -> Millis {
        self.since.map_or(0, |s| now.saturating_sub(s))
    }

    /// The mean of `figure` over the last `window_ms`: sample by sample up to a minute,
    /// minute by minute beyond. `None` before the first sample.
    pub fn average(&self, figure: Figure, window_ms: Millis, now: Millis) -> Option<f64> {
        let (cpu, memory) = self.averages(window_ms, now)?;
        Some(match figure {
            Figure::Cpu => cpu,
            Figure::Memory => memory,
        })
    }

    /// The means of CPU and of memory over the last `window_ms`, in one pass.
    pub fn averages(&self, window_ms: Millis, now: Millis) -> Option<(f64, f64)> {
        let from = now.saturating_sub(window_ms);
        let (cpu, memory, count) = if window_ms <= RECENT_MS {
            // Oldest first: the samples in the window are the newest ones.
            self.recent
                .iter()
                .rev()
                .take_while(|s| s.at >= from)
                .fold((0.0, 0.0, 0u32), |(c, m, n), s| {
                    (c + s.tree_cpu as f64, m + s.tree_memory as f64, n + 1)
                })
        } else {
            self.minutes
                .iter()
                .rev()
                .take_while(|b| b.minute >= from / MINUTE)
                .fold((0.0, 0.0, 0u32), |(c, m, n), b| {
                    (c + b.cpu, m + b.memory, n + b.count)
                })
        };
        (count > 0).then(|| (cpu / count as f64, memory / count as f64))
    }

    /// The trend of the tree's memory over the last `window_ms`, in bytes per hour (least
    /// squares), once the run has been sampled for at least 80% of the window.
    pub fn memory_growth_per_hour(&self, window_ms: Millis, now: Millis) -> Option<f64> {
        if self.span(now) * 5 < window_ms * 4 {
            return None;
        }
        let from = now.saturating_sub(window_ms);
        let points: Vec<(f64, f64)> = if window_ms <= RECENT_MS {
            self.recent
                .iter()
                .filter(|s| s.at >= from)
                .map(|s| (s.at as f64, s.tree_memory as f64))
                .collect()
        } else {
            self.minutes
                .iter()
                .filter(|b| b.minute >= from / MINUTE)
                .map(|b| {
                    let mid = (b.minute * MINUTE + MINUTE / 2) as f64;
                    (mid, b.memory / b.count.max(1) as f64)
                })
                .collect()
        };
        slope(&points).map(|per_ms| per_ms * 3_600_000.0)
    }

    /// Samples of this run at or after `from`, oldest first.
    fn since(&self, from: Millis) -> impl Iterator<Item = &Sample> {
        self.recent.iter().filter(move |s| s.at >= from)
    }
}

/// Least-squares slope of `y` over `x`; `None` for fewer than 3 points or no spread in x.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// `max_memory_restart` as the sampler applies it to every instance at every sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryPolicy {
    /// Restart when the tree's memory is above this…
    pub limit: Option<u64>,
    /// …for this long (0: at the first sample above it).
    pub sustain_ms: Millis,
    /// Restart when memory grows faster than this many bytes per hour…
    pub growth_per_hour: Option<u64>,
    /// …measured over this window.
    pub growth_window_ms: Millis,
}

/// Why an instance is over its memory policy, with the figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Breach {
    Limit {
        memory: u64,
        limit: u64,
        sustain_ms: Millis,
    },
    Growth {
        per_hour: f64,
        limit_per_hour: u64,
        window_ms: Millis,
    },
}

impl MemoryPolicy {
    pub fn is_set(&self) -> bool {
        self.limit.is_some() || self.growth_per_hour.is_some()
    }

    /// The breach the latest sample shows, if any.
    pub fn breach(&self, history: &History, now: Millis) -> Option<Breach> {
        if let Some(limit) = self.limit
            && let Some(latest) = history.latest()
            && latest.tree_memory > limit
        {
            let from = now.saturating_sub(self.sustain_ms);
            let covered = history.span(now) >= self.sustain_ms;
            if covered && history.since(from).all(|s| s.tree_memory > limit) {
                return Some(Breach::Limit {
                    memory: latest.tree_memory,
                    limit,
                    sustain_ms: self.sustain_ms,
                });
            }
        }
        let limit_per_hour = self.growth_per_hour?;
        let per_hour = history.memory_growth_per_hour(self.growth_window_ms, now)?;
        (per_hour > limit_per_hour as f64).then_some(Breach::Growth {
            per_hour,
            limit_per_hour,
            window_ms: self.growth_window_ms,
        })
    }
}

impl std::fmt::Display for Breach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::units::format_bytes;
        match *self {
            Breach::Limit {
                memory,
                limit,
                sustain_ms: 0,
            } => write!(
                f,
                "memory {} above the limit {}",
                format_bytes(memory),
                format_bytes(limit)
            ),
            Breach::Limit {
                memory,
                limit,
                sustain_ms,
            } => write!(
                f,
                "memory {} above the limit {} for {}s",
                format_bytes(memory),
                format_bytes(limit),
                sustain_ms / 1000
            ),
            Breach::Growth {
                per_hour,
                limit_per_hour,
                window_ms,
            } => write!(
                f,
                "memory growing {}/h over the last {}s, above {}/h",
                format_bytes(per_hour.max(0.0) as u64),
                window_ms / 1000,
                format_bytes(limit_per_hour)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: Millis, cpu: f32, memory: u64) -> Sample {
        Sample {
            at,
            cpu,
            memory,
            tree_cpu: cpu,
            tree_memory: memory,
            processes: 1,
        }
    }

    fn history(points: impl IntoIterator<Item = (Millis, f32, u64)>) -> History {
        let mut h = History::default();
        for (at, cpu, mem) in points {
            h.push(sample(at, cpu, mem));
        }
        h
    }

    #[test]
    fn recent_is_the_newest_of_the_last_minute_oldest_first() {
        // 90 samples a second apart: the last minute is the newest 61 (29 s..=89 s).
        let h = history((0..90).map(|i| (i * 1000, i as f32, 0)));
        let at = |max| h.recent(max).map(|s| s.at / 1000).collect::<Vec<_>>();
        assert_eq!(at(usize::MAX), (29..90).collect::<Vec<_>>());
        assert_eq!(at(3), [87, 88, 89]);
        assert!(at(0).is_empty());
        assert_eq!(History::default().recent(5).count(), 0);
    }

    #[test]
    fn averages_use_samples_within_the_window() {
        let h = history((0..10).map(|i| (i * 1000, i as f32 * 10.0, 0)));
        // Last 3 s: samples at 7, 8, 9 s (70, 80, 90) from now = 9 s.
        assert_eq!(h.average(Figure::Cpu, 2000, 9000), Some(80.0));
        assert_eq!(h.average(Figure::Cpu, 60_000, 9000), Some(45.0));
        assert_eq!(History::default().average(Figure::Cpu, 1000, 0), None);
    }

    #[test]
    fn long_windows_use_minute_buckets_and_recent_keeps_a_minute() {
        // 30 minutes at one sample per second: cpu = the minute number.
        let h = history((0..1800u64).map(|s| (s * 1000, (s / 60) as f32, 0)));
        assert!(h.recent.len() <= 61);
        let now = 1799 * 1000;
        // Last 5 minutes from 29:59: minutes 24..=29 (the bucket of `from` is included).
        assert_eq!(h.average(Figure::Cpu, 5 * MINUTE, now), Some(26.5));
        assert_eq!(h.average(Figure::Cpu, 15 * MINUTE, now), Some(21.5));
    }

    #[test]
    fn growth_is_the_slope_per_hour() {
        // 1 MiB per second over 60 s = 3600 MiB/h.
        let h = history((0..=60u64).map(|s| (s * 1000, 0.0, s << 20)));
        let per_hour = h.memory_growth_per_hour(60_000, 60_000).unwrap();
        assert!((per_hour - 3600.0 * (1 << 20) as f64).abs() < 1.0);
        // Not enough of the window sampled yet.
        let short = history((0..10u64).map(|s| (s * 1000, 0.0, s << 20)));
        assert_eq!(short.memory_growth_per_hour(60_000, 9000), None);
    }

    #[test]
    fn a_limit_trips_at_the_first_sample_above_it() {
        let policy = MemoryPolicy {
            limit: Some(100),
            ..Default::default()
        };
        let h = history([(0, 0.0, 50), (1000, 0.0, 100)]);
        assert_eq!(policy.breach(&h, 1000), None, "equal is not above");
        let h = history([(0, 0.0, 50), (1000, 0.0, 101)]);
        assert!(matches!(
            policy.breach(&h, 1000),
            Some(Breach::Limit { memory: 101, .. })
        ));
    }

    #[test]
    fn a_sustained_limit_needs_every_sample_of_the_span_above_it() {
        let policy = MemoryPolicy {
            limit: Some(100),
            sustain_ms: 3000,
            ..Default::default()
        };
        // A spike is not enough.
        let spike = history([
            (0, 0.0, 50),
            (1000, 0.0, 500),
            (2000, 0.0, 50),
            (3000, 0.0, 500),
        ]);
        assert_eq!(policy.breach(&spike, 3000), None);
        // Above for 3 s, but the run is younger than that.
        let young = history([(0, 0.0, 200), (1000, 0.0, 200), (2000, 0.0, 200)]);
        assert_eq!(policy.breach(&young, 2000), None);
        let held = history((0..=4u64).map(|s| (s * 1000, 0.0, 200)));
        assert!(policy.breach(&held, 4000).is_some());
    }

    #[test]
    fn growth_trips_only_above_its_rate() {
        let policy = MemoryPolicy {
            growth_per_hour: Some(4000 << 20),
            growth_window_ms: 30_000,
            ..Default::default()
        };
        let h = history((0..=60u64).map(|s| (s * 1000, 0.0, s << 20)));
        assert_eq!(policy.breach(&h, 60_000), None, "3600 MiB/h is below 4000");
        let faster = MemoryPolicy {
            growth_per_hour: Some(1000 << 20),
            ..policy
        };
        let breach = faster.breach(&h, 60_000).unwrap();
        assert!(
            breach.to_string().starts_with("memory growing 3.5gb/h"),
            "{breach}"
        );
    }
}
