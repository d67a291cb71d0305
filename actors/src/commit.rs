//! Group commit of asynchronous events (spawns, exits, transitions after a crash): they are
//! made durable together, at most `GROUP_COMMIT_DELAY` after the first of them, and nothing
//! wakes up while nothing happens. Commands do not wait for this: they flush themselves.

use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::Duration;

use pmx_storage::Journal;
use tokio::sync::Notify;

use crate::compactor::{SNAPSHOT_EVERY, Wake};

const GROUP_COMMIT_DELAY: Duration = Duration::from_millis(200);

pub async fn run(journal: Arc<dyn Journal>, pending: Arc<Notify>, compactor: Sender<Wake>) {
    loop {
        pending.notified().await;
        tokio::time::sleep(GROUP_COMMIT_DELAY).await;
        if let Err(e) = journal.flush() {
            eprintln!("pmx: journal flush failed: {e}");
        }
        if journal.head().saturating_sub(journal.snapshot_seq()) >= SNAPSHOT_EVERY {
            let _ = compactor.send(Wake::Snapshot);
        }
    }
}
