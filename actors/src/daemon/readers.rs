//! The history readers: two long-lived threads at nice 19, started at the first history
//! request, that read the journal off the actor's thread. A long scan (a filter over a big
//! journal) delays no command and no other client, even with every core busy; a flood of
//! history requests queues here instead of taking a thread (or a core) each.

use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};

/// One read, sending its answer itself.
pub type Job = Box<dyn FnOnce() + Send>;

const READERS: usize = 2;

/// Where jobs go; `None` when no reader thread could be started.
pub fn queue() -> Option<&'static Sender<Job>> {
    static QUEUE: OnceLock<Option<Sender<Job>>> = OnceLock::new();
    QUEUE.get_or_init(start).as_ref()
}

fn start() -> Option<Sender<Job>> {
    let (jobs, waiting) = channel::<Job>();
    let waiting = Arc::new(Mutex::new(waiting));
    let started = (0..READERS)
        .filter(|n| {
            let waiting = waiting.clone();
            std::thread::Builder::new()
                .name(format!("pmx-history-{n}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        // The lock is held only while waiting, not while reading.
                        let job = match waiting.lock() {
                            Ok(waiting) => waiting.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        // A read that panics loses its answer, not the reader.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                })
                .is_ok()
        })
        .count();
    (started > 0).then_some(jobs)
}

/// This thread yields the CPU to everything else (nice 19): on a busy machine a scan
/// waits, a command does not. Best effort.
fn lower_priority() {
    // SAFETY: plain syscalls on this thread's own id.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 19);
    }
}
