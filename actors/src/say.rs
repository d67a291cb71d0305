//! The daemon's own messages (to its stderr, `pmx.log` when autostarted). Writing them must
//! never take the daemon down: `eprintln!` panics when stderr fails (a full disk, a closed
//! pipe), so `say!` writes with the error ignored and counts what it could not write.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Messages that could not be written since the daemon started.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Writes one line to stderr; on failure the line is dropped and counted.
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut text = args.to_string();
    text.push('\n');
    if std::io::stderr().write_all(text.as_bytes()).is_err() {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// How many messages were dropped so far.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// `eprintln!` that never panics: see the module.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::say::line(format_args!($($arg)*))
    };
}
