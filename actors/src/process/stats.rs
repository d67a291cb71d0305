//! CPU and memory of one process, read from /proc on demand. CPU % is the share of one core
//! used since the previous reading of the same process.

use std::time::Instant;

/// The previous reading, to turn CPU time into a percentage.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    pid: u32,
    ticks: u64,
    at: Instant,
}

pub struct Usage {
    pub cpu: f32,
    pub memory: u64,
}

pub fn read(pid: u32, previous: &mut Option<CpuSample>) -> Usage {
    let Ok(stat) = procfs::process::Process::new(pid as i32).and_then(|p| p.stat()) else {
        return Usage {
            cpu: 0.0,
            memory: 0,
        };
    };
    let page = procfs::page_size();
    let ticks = stat.utime + stat.stime;
    let now = Instant::now();
    let cpu = match previous {
        Some(prev) if prev.pid == pid => {
            let secs = now.duration_since(prev.at).as_secs_f64();
            let used = ticks.saturating_sub(prev.ticks) as f64 / procfs::ticks_per_second() as f64;
            if secs > 0.0 {
                (used / secs * 100.0) as f32
            } else {
                0.0
            }
        }
        _ => 0.0,
    };
    *previous = Some(CpuSample {
        pid,
        ticks,
        at: now,
    });
    Usage {
        cpu: (cpu * 10.0).round() / 10.0,
        memory: stat.rss * page,
    }
}
