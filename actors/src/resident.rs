//! What the daemon keeps resident, kept to what it uses:
//! - once it listens, and again once commands have stopped coming for `QUIET`, the pages of
//!   its own binary that start-up or the commands brought in (opening and replaying the
//!   journal, booting and starting apps, answering clients) are advised out (`MADV_PAGEOUT`):
//!   the kernel drops the ones nothing else maps, and the code the daemon runs from then on
//!   comes back on its first use. Without this a daemon keeps every page it ever touched (and
//!   the pages the kernel maps around each fault) for its whole life: about 3 MiB of its 7 at
//!   start, 4 MiB more once it has started apps. The shared libraries' code it mapped the same
//!   way (libc, libm: 1.5 MiB) cannot leave memory, every process uses it, but the daemon
//!   lets go of it and maps back only what it runs;
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

/// How a mapping's pages are handed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    /// The daemon's own binary, which only it maps: out of memory (`MADV_PAGEOUT`).
    PageOut,
    /// Shared libraries' code (libc, libm, the loader), which every process maps, so no
    /// page of it can leave memory: only this process's hold on it is dropped
    /// (`MADV_DONTNEED`; code never written to reads back the same from the file). About
    /// 1.5 MiB of the daemon's RSS otherwise, most of it code it ran once.
    Unmap,
}

/// Advises out the daemon binary's read-only mappings and drops its hold on shared
/// libraries' code; returns how many bytes were advised. Only advice: a kernel without
/// `MADV_PAGEOUT` (before 5.4) keeps the pages, and nothing the daemon reads changes either
/// way.
fn release_start_up_code() -> usize {
    let Ok(binary) = std::fs::metadata("/proc/self/exe") else {
        return 0;
    };
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return 0;
    };
    let mut advised = 0;
    for (start, len, how) in maps
        .lines()
        .filter_map(|l| mapping_to_release(l, binary.ino()))
    {
        let at = start as *mut libc::c_void;
        // SAFETY: the range is one whole mapping of this process, read-only and backed by a
        // file. Paging the binary out changes no byte the process can read, only whether the
        // page is resident; dropping a library's code pages (executable, never written:
        // `r-xp`) makes the next use read the same bytes from the file.
        // No read-around when the code comes back: only the pages the daemon runs return.
        unsafe { libc::madvise(at, len, libc::MADV_RANDOM) };
        let advice = match how {
            Release::PageOut => libc::MADV_PAGEOUT,
            Release::Unmap => libc::MADV_DONTNEED,
        };
        if unsafe { libc::madvise(at, len, advice) } == 0 {
            advised += len;
        }
    }
    advised
}

/// `(start, length, how)` of a line of /proc/self/maps to hand back: a mapping of the file
/// with inode `binary` without write permission, or the code of another file (`r-xp`:
/// never a library's data, which relocation may have written to).
fn mapping_to_release(line: &str, binary: u64) -> Option<(usize, usize, Release)> {
    let mut fields = line.split_ascii_whitespace();
    let (range, perms) = (fields.next()?, fields.next()?);
    let inode: u64 = fields.nth(2)?.parse().ok()?;
    let how = if inode == binary && !perms.contains('w') {
        Release::PageOut
    } else if inode != 0 && perms == "r-xp" {
        Release::Unmap
    } else {
        return None;
    };
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    Some((start, end.checked_sub(start)?, how))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binary_is_paged_out_and_libraries_code_let_go() {
        let text = "5581e000-55a1f000 r-xp 00062000 fd:01 4242 /usr/bin/pmx d";
        assert_eq!(
            mapping_to_release(text, 4242),
            Some((0x5581e000, 0x201000, Release::PageOut))
        );
        let rodata = "55a1f000-55a20000 r--p 00263000 fd:01 4242 /usr/bin/pmx d";
        assert_eq!(
            mapping_to_release(rodata, 4242),
            Some((0x55a1f000, 0x1000, Release::PageOut))
        );
        let data = "55a1f000-55a20000 rw-p 00263000 fd:01 4242 /usr/bin/pmx d";
        assert_eq!(mapping_to_release(data, 4242), None);
        let libc = "7f00000-7f10000 r-xp 00000000 fd:01 77 /usr/lib/libc.so.6";
        assert_eq!(
            mapping_to_release(libc, 4242),
            Some((0x7f00000, 0x10000, Release::Unmap))
        );
        // A library's read-only data may be relocated (written) data: kept.
        let relro = "7f10000-7f14000 r--p 001f0000 fd:01 77 /usr/lib/libc.so.6";
        assert_eq!(mapping_to_release(relro, 4242), None);
        let vdso = "7ffd000-7fff000 r-xp 00000000 00:00 0 [vdso]";
        assert_eq!(mapping_to_release(vdso, 4242), None);
        assert_eq!(
            mapping_to_release("7f00000-7f10000 rw-p 0 00:00 0", 0),
            None
        );
        assert_eq!(mapping_to_release("garbage", 4242), None);
    }

    #[test]
    fn the_test_binary_releases_its_own_code_and_still_runs() {
        assert!(
            release_start_up_code() > 0,
            "the test binary maps its own code read-only"
        );
        // The code, the binary's and libc's, runs on after its pages were advised out.
        assert_eq!(
            mapping_to_release("1-2 r--p 0 0:0 9 x", 9),
            Some((1, 1, Release::PageOut))
        );
        assert!(format!("{:.3}", 2f64.sqrt()).starts_with("1.414"));
        assert!(std::fs::metadata("/proc/self/exe").is_ok());
    }
}
