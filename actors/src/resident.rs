//! What the daemon keeps resident, kept to what it uses:
//! - once it listens, and again once commands have stopped coming for `QUIET`, the pages of
//!   its own binary that start-up or the commands brought in (opening and replaying the
//!   journal, booting and starting apps, answering clients) are advised out (`MADV_PAGEOUT`):
//!   the kernel drops the ones nothing else maps, and the code the daemon runs from then on
//!   comes back on its first use. Without this a daemon keeps every page it ever touched (and
//!   the pages the kernel maps around each fault) for its whole life: about 3 MiB of its 7 at
//!   start, 4 MiB more once it has started apps;
//! - every half minute, the free pages inside the heap go back to the system (`malloc_trim`):
//!   a burst (500 apps started, then deleted) leaves holes glibc keeps otherwise.

use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often the heap's free pages are handed back.
const TRIM_EVERY: Duration = Duration::from_secs(30);
/// Commands that stopped coming this long ago have left code behind to hand back.
const QUIET: Duration = Duration::from_secs(2);

/// When the last command came (ms since the epoch).
static LAST_COMMAND: AtomicU64 = AtomicU64::new(0);
/// Wakes `keep_small` when commands come after a quiet time (at rest it never wakes for them).
static CAME: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// A client came: its code will be worth handing back once they stop.
pub fn note_command() {
    LAST_COMMAND.store(crate::clock::now_ms(), Ordering::Relaxed);
    CAME.notify_one();
}

/// Runs for the daemon's life: the start-up code released a second after it listens (pages
/// just read in cannot be reclaimed before the kernel has put them on its lists, which each
/// CPU does in batches), the code of a burst of commands once they stop for `QUIET`, and the
/// heap trimmed every `TRIM_EVERY`.
pub async fn keep_small() {
    tokio::time::sleep(Duration::from_secs(1)).await;
    release_start_up_code();
    let mut last_trim = Instant::now();
    loop {
        let came = tokio::select! {
            _ = CAME.notified() => true,
            _ = tokio::time::sleep(TRIM_EVERY.saturating_sub(last_trim.elapsed())) => false,
        };
        if came {
            // Until `QUIET` after the last command.
            loop {
                let due = LAST_COMMAND.load(Ordering::Relaxed) + QUIET.as_millis() as u64;
                let now = crate::clock::now_ms();
                if now >= due {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(due - now)).await;
            }
        }
        // SAFETY: malloc_trim only returns free memory of the allocator to the system.
        unsafe { libc::malloc_trim(0) };
        last_trim = Instant::now();
        if came {
            release_start_up_code();
        }
    }
}

/// Advises out the daemon binary's read-only mappings; returns how many bytes were advised.
/// Only advice: a kernel without `MADV_PAGEOUT` (before 5.4) keeps the pages, and nothing the
/// daemon reads changes either way.
fn release_start_up_code() -> usize {
    let Ok(binary) = std::fs::metadata("/proc/self/exe") else {
        return 0;
    };
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return 0;
    };
    let mut advised = 0;
    for (start, len) in maps
        .lines()
        .filter_map(|l| read_only_mapping_of(l, binary.ino()))
    {
        // SAFETY: the range is one whole mapping of this process, read-only and backed by the
        // binary's file; paging it out changes no byte the process can read, only whether the
        // page is resident.
        // No read-around when the code comes back: only the pages the daemon runs return.
        unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_RANDOM) };
        if unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_PAGEOUT) } == 0 {
            advised += len;
        }
    }
    advised
}

/// `(start, length)` of a line of /proc/self/maps when it maps the file with inode `inode`
/// without write permission.
fn read_only_mapping_of(line: &str, inode: u64) -> Option<(usize, usize)> {
    let mut fields = line.split_ascii_whitespace();
    let (range, perms) = (fields.next()?, fields.next()?);
    let mapped_inode: u64 = fields.nth(2)?.parse().ok()?;
    if mapped_inode != inode || perms.contains('w') {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    Some((start, end.checked_sub(start)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_read_only_mappings_of_the_binary_are_chosen() {
        let text = "5581e000-55a1f000 r-xp 00062000 fd:01 4242 /usr/bin/pmx d";
        assert_eq!(
            read_only_mapping_of(text, 4242),
            Some((0x5581e000, 0x201000))
        );
        let data = "55a1f000-55a20000 rw-p 00263000 fd:01 4242 /usr/bin/pmx d";
        assert_eq!(read_only_mapping_of(data, 4242), None);
        let libc = "7f00000-7f10000 r-xp 00000000 fd:01 77 /usr/lib/libc.so.6";
        assert_eq!(read_only_mapping_of(libc, 4242), None);
        assert_eq!(
            read_only_mapping_of("7f00000-7f10000 rw-p 0 00:00 0", 0),
            None
        );
        assert_eq!(read_only_mapping_of("garbage", 4242), None);
    }

    #[test]
    fn the_test_binary_releases_its_own_code_and_still_runs() {
        assert!(
            release_start_up_code() > 0,
            "the test binary maps its own code read-only"
        );
        // The code runs on after its pages were advised out.
        assert_eq!(read_only_mapping_of("1-2 r--p 0 0:0 9 x", 9), Some((1, 1)));
    }
}
