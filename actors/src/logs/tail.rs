//! The dashboard's and monit's log tails: the last lines of many files at once, on the
//! blocking pool, within one budget (`pmx_core::log_tail` reads each file).

use std::path::Path;

use pmx_core::log_tail::{TAIL_BYTES, last_lines_within};

/// The last `n` lines (as text) of each source's file, read on the blocking pool: the
/// dashboard's log tail and the start of `monit`'s. All of them together read about
/// `TAIL_BYTES` at most, so one answer's size is bounded however many files it covers.
pub async fn tails(
    sources: Vec<pmx_core::protocol::LogSource>,
    n: usize,
) -> Vec<(pmx_core::protocol::LogSource, Vec<String>)> {
    let budget = TAIL_BYTES / sources.len().max(1);
    let read = tokio::task::spawn_blocking(move || {
        sources
            .into_iter()
            .map(|source| {
                let lines = last_lines_within(Path::new(&source.path), n, budget)
                    .into_iter()
                    .map(|l| String::from_utf8_lossy(&l).into_owned())
                    .collect();
                (source, lines)
            })
            .collect()
    });
    read.await.unwrap_or_default()
}
