//! How much each instance wrote, per stream, since the daemon started: counted by the log
//! thread without a lock (atomics), read by views and `/metrics`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use pmx_core::logs::Stream;
use pmx_core::view::OutputCounts;

/// One instance's counters; a restarted instance keeps counting on the same ones.
#[derive(Debug, Default)]
pub struct Written {
    lines: [AtomicU64; 2],
    bytes: [AtomicU64; 2],
}

impl Written {
    /// Counts a read of `data` from `stream`.
    pub fn add(&self, stream: Stream, data: &[u8]) {
        let i = stream as usize;
        let lines = memchr::memchr_iter(b'\n', data).count() as u64;
        self.lines[i].fetch_add(lines, Ordering::Relaxed);
        self.bytes[i].fetch_add(data.len() as u64, Ordering::Relaxed);
    }

    fn counts(&self) -> OutputCounts {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        OutputCounts {
            out_lines: get(&self.lines[Stream::Out as usize]),
            out_bytes: get(&self.bytes[Stream::Out as usize]),
            err_lines: get(&self.lines[Stream::Err as usize]),
            err_bytes: get(&self.bytes[Stream::Err as usize]),
        }
    }
}

/// Every instance's counters, by app name and id.
#[derive(Debug, Clone, Default)]
pub struct Tally(Arc<Mutex<Counters>>);

/// By pm_id (never reused while the daemon runs).
type Counters = HashMap<u32, Arc<Written>>;

impl Tally {
    /// The counters of an instance, created at its first stream.
    pub fn of(&self, id: u32) -> Arc<Written> {
        super::lock(&self.0).entry(id).or_default().clone()
    }

    pub fn counts(&self, id: u32) -> OutputCounts {
        super::lock(&self.0)
            .get(&id)
            .map(|w| w.counts())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lines_and_bytes_per_stream() {
        let tally = Tally::default();
        let w = tally.of(3);
        w.add(Stream::Out, b"one\ntwo\npartial");
        w.add(Stream::Err, b"oops\n");
        tally.of(3).add(Stream::Out, b" end\n");
        let c = tally.counts(3);
        assert_eq!((c.out_lines, c.out_bytes), (3, 20));
        assert_eq!((c.err_lines, c.err_bytes), (1, 5));
        assert_eq!(tally.counts(4), OutputCounts::default());
    }
}
