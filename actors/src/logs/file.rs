//! One log file as the log thread writes it: opened on first use, rotated by size and on its
//! cron ticks (renamed, never copied: no line is lost or written twice) when it is a regular
//! file of its own, rotated copies gzipped on a side thread and pruned to `retain`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Local};
use pmx_core::logs::{Rotation, rotated_files, rotated_name, strftime_of};
use pmx_core::units::six_field_cron;

use pmx_core::time::format_local;

pub struct LogFile {
    pub path: PathBuf,
    /// Whether the path may be opened through a symlink: a path of the user's own, not one
    /// in the home (see `HubConfig::home_logs`).
    pub follow_links: bool,
    file: Option<File>,
    size: u64,
    /// The path is a regular file of its own, not a symlink (`-o out.log` linked to
    /// /dev/null or /dev/stdout in a container), a device or a FIFO: only then is it renamed
    /// aside. Anything else is written to, never moved.
    rotatable: bool,
    rotation: Rotation,
    schedule: Option<cron::Schedule>,
    pub next_tick: Option<DateTime<Local>>,
}

/// A write that did not reach the file: how many bytes were lost, and why.
pub struct Lost {
    pub bytes: u64,
    pub error: String,
}

/// 5 fields (minutes first) or 6 (seconds first), as `cron_restart` takes them.
fn schedule_of(expr: &str) -> Option<cron::Schedule> {
    cron::Schedule::from_str(&six_field_cron(expr).ok()?).ok()
}

impl LogFile {
    pub fn new(path: PathBuf, rotation: Rotation) -> Self {
        let schedule = rotation.interval.as_deref().and_then(schedule_of);
        let next_tick = schedule.as_ref().and_then(|s| s.upcoming(Local).next());
        LogFile {
            path,
            follow_links: true,
            file: None,
            size: 0,
            rotatable: false,
            rotation,
            schedule,
            next_tick,
        }
    }

    fn open(&mut self) -> std::io::Result<&mut File> {
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)?;
            }
            // 0600 whatever the umask: output often carries secrets. A log path of the
            // user's own (`-o`) may be a link (to /dev/null, /dev/stdout) and is followed;
            // one in the home never is.
            let flags = if self.follow_links {
                libc::O_CLOEXEC
            } else {
                libc::O_CLOEXEC | libc::O_NOFOLLOW
            };
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .custom_flags(flags)
                .open(&self.path)?;
            self.size = file.metadata().map_or(0, |m| m.len());
            self.rotatable = regular_file(&self.path);
            self.file = Some(file);
        }
        self.file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("log file not open"))
    }

    /// Creates the file now (PM2's files exist from the start, output or not). A failure
    /// shows at the first write.
    pub fn create(&mut self) {
        let _ = self.open();
    }

    /// Writes all of `bytes` or reports what was lost. Rotates when the size is reached,
    /// at a line boundary: a file ends with the line that reaches the size.
    pub fn write(&mut self, mut bytes: &[u8]) -> Result<(), Lost> {
        while !bytes.is_empty() {
            let max = if self.rotatable {
                self.rotation.max_size_bytes
            } else {
                0
            };
            let room = max.saturating_sub(self.size) as usize;
            let cut = if max > 0 && bytes.len() > room {
                // At the end of the line that reaches the size, or where a line running on
                // past it by a cut piece must be split (see below).
                let from = room.saturating_sub(1).min(bytes.len());
                let split = max
                    .saturating_add(super::lines::MAX_PENDING as u64)
                    .saturating_sub(self.size) as usize;
                memchr::memchr(b'\n', &bytes[from..])
                    .map_or(bytes.len(), |at| from + at + 1)
                    .min(split)
                    .max(1)
            } else {
                bytes.len()
            };
            if let Err(e) = self.write_all(&bytes[..cut]) {
                // Reopen next time: the file may have been removed or the disk freed.
                self.file = None;
                return Err(Lost {
                    bytes: (bytes.len() - e.0) as u64,
                    error: e.1.to_string(),
                });
            }
            let whole_line = bytes[..cut].ends_with(b"\n");
            bytes = &bytes[cut..];
            // Never between the pieces of one line, unless the line goes on past the size
            // by more than a cut piece: output without newlines still rotates.
            let overdue = self.size >= max.saturating_add(super::lines::MAX_PENDING as u64);
            if max > 0 && self.size >= max && (whole_line || overdue) {
                self.rotate();
            }
        }
        Ok(())
    }

    /// Writes a whole slice; on failure, how much of it was written and why.
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), (usize, std::io::Error)> {
        let mut written = 0;
        let file = self.open().map_err(|e| (0, e))?;
        while written < bytes.len() {
            match file.write(&bytes[written..]) {
                Ok(0) => {
                    self.size += written as u64;
                    return Err((written, std::io::ErrorKind::WriteZero.into()));
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.size += written as u64;
                    return Err((written, e));
                }
            }
        }
        self.size += written as u64;
        Ok(())
    }

    /// Renames the file aside and starts a new one. Errors are reported in pmx.log; the
    /// file then simply keeps growing.
    pub fn rotate(&mut self) {
        self.file = None;
        let stamp = format_local(
            super::lines::Clock::now_ms(),
            &strftime_of(&self.rotation.date_format),
        );
        let taken = |p: &Path| {
            let mut gz = p.as_os_str().to_owned();
            gz.push(".gz");
            p.exists() || Path::new(&gz).exists()
        };
        let mut target = rotated_name(&self.path, &stamp);
        let mut n = 1;
        while taken(&target) {
            target = rotated_name(&self.path, &format!("{stamp}-{n}"));
            n += 1;
        }
        if let Err(e) = std::fs::rename(&self.path, &target) {
            crate::say!("pmx: cannot rotate {}: {e}", self.path.display());
            return;
        }
        self.size = 0;
        // The new file exists at once (for `tail -F` and `pmx logs`).
        self.create();
        let (path, rotation) = (self.path.clone(), self.rotation.clone());
        let work = move || {
            if rotation.compress {
                compress(&target);
            }
            prune(&path, rotation.retain);
        };
        if self.rotation.compress {
            // gzip takes a while for a big file: never on the log thread.
            if let Err(e) = std::thread::Builder::new()
                .name("pmx-gzip".into())
                .spawn(work)
            {
                crate::say!("pmx: cannot compress {}: {e}", self.path.display());
            }
        } else {
            work();
        }
    }

    /// A cron tick came: rotate a non-empty file, and plan the next tick.
    pub fn tick(&mut self) {
        let content = self.size > 0 || std::fs::metadata(&self.path).is_ok_and(|m| m.len() > 0);
        if content && regular_file(&self.path) {
            self.rotate();
        }
        self.next_tick = self
            .schedule
            .as_ref()
            .and_then(|s| s.upcoming(Local).next());
    }

    /// `pmx flush`: empty the file (appends continue at its new end).
    pub fn truncate(&mut self) -> std::io::Result<()> {
        truncate(&self.path)?;
        self.size = 0;
        Ok(())
    }

    /// `pmx reloadLogs`: the next write opens the file again (after an outside rotation).
    pub fn reopen(&mut self) {
        self.file = None;
    }
}

/// Whether `path` is a regular file of its own (not a symlink, a FIFO or a device): only
/// such a file is renamed aside by a rotation.
fn regular_file(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
}

/// Empties a file that exists.
pub fn truncate(path: &Path) -> std::io::Result<()> {
    match OpenOptions::new().write(true).open(path) {
        Ok(file) => file.set_len(0),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// `x.log` → `x.log.gz` (written aside, then renamed; the original removed after).
fn compress(path: &Path) {
    let mut gz_name = path.as_os_str().to_owned();
    gz_name.push(".gz");
    let gz = PathBuf::from(gz_name);
    let mut tmp_name = gz.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let result = (|| -> std::io::Result<()> {
        let mut input = File::open(path)?;
        let modified = input.metadata()?.modified()?;
        let output = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)?;
        let mut encoder = flate2::write::GzEncoder::new(output, flate2::Compression::default());
        std::io::copy(&mut input, &mut encoder)?;
        let output = encoder.finish()?;
        // Rotated copies are ordered by modification time: keep the original's.
        output.set_modified(modified)?;
        output.sync_all()?;
        std::fs::rename(&tmp, &gz)?;
        std::fs::remove_file(path)
    })();
    if let Err(e) = result {
        crate::say!("pmx: cannot compress {}: {e}", path.display());
        let _ = std::fs::remove_file(&tmp);
    }
}

/// Removes the oldest rotated copies beyond `retain`.
fn prune(path: &Path, retain: u32) {
    let rotated = rotated_files(path);
    let excess = rotated.len().saturating_sub(retain as usize);
    for old in rotated.into_iter().take(excess) {
        if let Err(e) = std::fs::remove_file(&old) {
            crate::say!("pmx: cannot remove {}: {e}", old.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rotation(max: u64, retain: u32) -> Rotation {
        Rotation {
            max_size_bytes: max,
            retain,
            ..Rotation::default()
        }
    }

    #[test]
    fn output_without_newlines_is_split_and_rotated_past_the_size() {
        use super::super::lines::MAX_PENDING;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flat-out.log");
        let mut file = LogFile::new(path.clone(), rotation(1000, 100));
        let flood = vec![b'x'; 3 * MAX_PENDING + 123];
        for piece in flood.chunks(MAX_PENDING / 3 + 7) {
            file.write(piece).ok().unwrap();
        }
        let mut sizes: Vec<u64> = rotated_files(&path)
            .iter()
            .chain([&path])
            .map(|p| std::fs::metadata(p).unwrap().len())
            .collect();
        assert_eq!(
            sizes.iter().sum::<u64>(),
            flood.len() as u64,
            "nothing lost"
        );
        sizes.sort();
        assert!(sizes.len() >= 3, "{sizes:?}");
        assert!(
            *sizes.last().unwrap() <= 1000 + MAX_PENDING as u64,
            "{sizes:?}"
        );
    }

    #[test]
    fn rotates_at_line_boundaries_keeps_every_line_and_prunes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api-out.log");
        let mut file = LogFile::new(path.clone(), rotation(10, 3));
        let text: String = (0..20).map(|i| format!("line {i:02}\n")).collect();
        // In odd pieces, as reads come.
        for piece in text.as_bytes().chunks(7) {
            file.write(piece).ok().unwrap();
        }
        let rotated = rotated_files(&path);
        assert_eq!(rotated.len(), 3, "retain keeps the newest 3: {rotated:?}");
        let mut kept = String::new();
        for f in rotated.iter().chain([&path]) {
            let part = std::fs::read_to_string(f).unwrap();
            assert!(
                part.is_empty() || part.ends_with('\n'),
                "whole lines: {part:?}"
            );
            kept.push_str(&part);
        }
        assert!(
            text.ends_with(&kept),
            "the newest lines, in order, none twice"
        );
        // A cron tick rotates a file with content, not an empty one.
        file.write(b"tail\n").ok().unwrap();
        let before = rotated_files(&path).len();
        file.tick();
        assert_eq!(std::fs::read(&path).map(|b| b.len()).unwrap_or(0), 0);
        file.tick();
        assert!(rotated_files(&path).len() <= before.max(3));
    }

    #[test]
    fn a_log_path_that_is_not_a_regular_file_is_written_to_and_never_moved() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        std::os::unix::fs::symlink("/dev/null", &path).unwrap();
        let mut file = LogFile::new(path.clone(), rotation(10, 3));
        for i in 0..50 {
            file.write(format!("line {i:02}\n").as_bytes())
                .ok()
                .unwrap();
        }
        file.tick();
        let link = std::fs::symlink_metadata(&path).unwrap();
        assert!(link.file_type().is_symlink(), "still the symlink");
        assert_eq!(std::fs::read_link(&path).unwrap(), Path::new("/dev/null"));
        assert!(rotated_files(&path).is_empty(), "nothing renamed aside");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no file made in its place: {names:?}");
    }
}
