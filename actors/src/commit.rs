//! Group commit of asynchronous events (spawns, exits, transitions after a crash): they are
//! made durable together, at most `GROUP_COMMIT_DELAY` after the first of them, and nothing
//! wakes up while nothing happens. Commands do not wait for this: they flush themselves.

use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::Duration;

use pmx_storage::Journal;
use tokio::sync::Notify;

use crate::compactor::{SNAPSHOT_EVERY, Wake};

const GROUP_COMMIT_DELAY: Duration = Duration::from_millis(100);

pub async fn run(journal: Arc<dyn Journal>, pending: Arc<Notify>, compactor: Sender<Wake>) {
    let mut was_degraded = false;
    loop {
        pending.notified().await;
        tokio::time::sleep(GROUP_COMMIT_DELAY).await;
        if let Err(e) = journal.flush() {
            crate::say!("pmx: journal flush failed: {e}");
        }
        let degraded = journal.degraded();
        if let Some(d) = &degraded
            && !was_degraded
        {
            crate::say!(
                "pmx: the journal cannot be written ({}): events are held in memory until it can",
                d.error
            );
        } else if degraded.is_none() && was_degraded {
            crate::say!("pmx: the journal is written again");
        }
        was_degraded = degraded.is_some();
        if was_degraded {
            // Nothing else may come to wake this up: keep trying to resume.
            pending.notify_one();
        }
        if journal.head().saturating_sub(journal.snapshot_seq()) >= SNAPSHOT_EVERY {
            let _ = compactor.send(Wake::Snapshot);
        }
    }
}
