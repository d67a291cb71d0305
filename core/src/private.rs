//! `PMX_HOME` belongs to one user. Before the daemon (or the CLI starting it) touches it, the
//! home and everything directly in it must be owned by that user and writable by no one else,
//! and no entry may be a symlink: otherwise someone else could plant a file the daemon would
//! trust (a Node preload it runs as root) or make it write through a link. Files and
//! directories are then created with explicit modes (0600, 0700) and opened without following
//! symlinks, whatever the process umask is.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why a home is not safe to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsafe {
    pub path: PathBuf,
    pub reason: String,
}

impl std::fmt::Display for Unsafe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "refusing PMX_HOME: {} {}; it must belong to uid {} and be writable by no one else (fix it, or choose another PMX_HOME)",
            self.path.display(),
            self.reason,
            euid()
        )
    }
}

/// The effective uid of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// What is wrong with one entry, if anything: a symlink, another owner, group/other write.
fn judge(meta: &std::fs::Metadata, uid: u32) -> Option<String> {
    if meta.file_type().is_symlink() {
        return Some("is a symlink".into());
    }
    if meta.uid() != uid {
        return Some(format!("is owned by uid {}", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!(
            "is writable by its group or others (mode {:o})",
            meta.mode() & 0o7777
        ));
    }
    None
}

/// Checks the home (followed, if it is itself a link) and every entry directly in it (not
/// followed) against `uid`. A home that does not exist yet is fine.
pub fn check_home(home: &Path, uid: u32) -> Result<(), Unsafe> {
    let unsafe_at = |path: &Path, reason: String| Unsafe {
        path: path.to_path_buf(),
        reason,
    };
    let meta = match std::fs::metadata(home) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(unsafe_at(home, format!("cannot be read ({e})"))),
    };
    if !meta.is_dir() {
        return Err(unsafe_at(home, "is not a directory".into()));
    }
    if let Some(reason) = judge(&meta, uid) {
        return Err(unsafe_at(home, reason));
    }
    let entries =
        std::fs::read_dir(home).map_err(|e| unsafe_at(home, format!("cannot be listed ({e})")))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue; // gone meanwhile
        };
        // The socket's mode is set right after bind; a socket is never opened as a file.
        if meta.file_type().is_symlink() || !is_socket(&meta) {
            if let Some(reason) = judge(&meta, uid) {
                return Err(unsafe_at(&path, reason));
            }
        } else if meta.uid() != uid {
            return Err(unsafe_at(&path, format!("is owned by uid {}", meta.uid())));
        }
    }
    Ok(())
}

fn is_socket(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    meta.file_type().is_socket()
}

/// Creates the home (0700, parents as needed) if it is missing, checks it, and makes it
/// 0700 (a home of ours that others may read, 0755, is closed).
pub fn prepare_home(home: &Path) -> Result<(), Unsafe> {
    let failed = |what: &str, e: io::Error| Unsafe {
        path: home.to_path_buf(),
        reason: format!("cannot be {what} ({e})"),
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(home)
        .map_err(|e| failed("created", e))?;
    check_home(home, euid())?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| failed("made private", e))
}

/// Creates a directory (0700) unless it exists; an existing one must be a real directory
/// of ours, not a link.
pub fn create_dir(path: &Path) -> io::Result<()> {
    match DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let meta = std::fs::symlink_metadata(path)?;
            if meta.is_dir() && meta.uid() == euid() {
                Ok(())
            } else {
                Err(io::Error::other(format!(
                    "{} exists and is not a directory of ours",
                    path.display()
                )))
            }
        }
        Err(e) => Err(e),
    }
}

/// Makes a directory of the home and what is directly in it private (0700 directories, 0600
/// files), for files a library created with its own modes (sled's). Best effort; links are
/// left alone.
pub fn restrict(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let set = |path: &Path, mode: u32| {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
    };
    set(dir, 0o700);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        match entry.file_type() {
            Ok(t) if t.is_dir() => set(&entry.path(), 0o700),
            Ok(t) if t.is_file() => set(&entry.path(), 0o600),
            _ => {}
        }
    }
}

/// Options for a file of the home: created 0600, never through a symlink.
pub fn options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    options
}

/// Opens (creating, 0600) a file of the home for appending, never through a symlink.
pub fn append(path: &Path) -> io::Result<File> {
    options().create(true).append(true).open(path)
}

/// Replaces a file of the home with `bytes` (0600, never through a symlink): written to a
/// temporary file beside it, then renamed over it (a rename replaces a link, never follows
/// it).
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_replacing(path, bytes, true)
}

/// Writes a file that only describes the running system (a pid file, written on every spawn
/// and worthless after a crash of the machine) in place, as PM2 does: no fsync, and no
/// temporary file, whose inode costs the most of a spawn on a file system that recycles
/// inodes slowly (ext4 without a journal scans its recently freed ones). A link or anything
/// else in the way is replaced by rename, never followed.
pub fn replace_volatile(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    // Non-blocking: a FIFO in the way answers ENXIO instead of waiting for a reader.
    let opened = (options().create(true).write(true).truncate(true))
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path);
    match opened {
        Ok(mut file) if file.metadata()?.is_file() => file.write_all(bytes),
        Ok(_) => write_replacing(path, bytes, false),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENXIO)) => {
            write_replacing(path, bytes, false)
        }
        Err(e) => Err(e),
    }
}

fn write_replacing(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut file = options().create_new(true).write(true).open(&tmp)?;
    file.write_all(bytes)?;
    if durable {
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn home() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "pmx-private-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_fresh_home_is_created_private_and_accepted() {
        let dir = home();
        prepare_home(&dir.join("a/b")).unwrap();
        let mode = std::fs::metadata(dir.join("a/b"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        // An existing home of ours that others may read is closed.
        let b = dir.join("a/b");
        std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o755)).unwrap();
        prepare_home(&b).unwrap();
        let mode = std::fs::metadata(&b).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn writable_homes_links_and_writable_entries_are_refused() {
        let dir = home();
        prepare_home(&dir).unwrap();
        let me = euid();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_home(&dir, me).unwrap_err();
        assert!(err.reason.contains("writable"), "{err}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        check_home(&dir, me).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.join("pmx.pid")).unwrap();
        let err = check_home(&dir, me).unwrap_err();
        assert_eq!(err.reason, "is a symlink");
        assert!(err.to_string().contains("pmx.pid"), "{err}");
        std::fs::remove_file(dir.join("pmx.pid")).unwrap();
        std::fs::write(dir.join("node-shim.cjs"), "x").unwrap();
        std::fs::set_permissions(
            dir.join("node-shim.cjs"),
            std::fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        assert!(check_home(&dir, me).is_err());
        std::fs::remove_file(dir.join("node-shim.cjs")).unwrap();
        let err = check_home(&dir, me.wrapping_add(1)).unwrap_err();
        assert!(err.reason.contains("owned by uid"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_are_created_0600_and_links_are_never_followed() {
        let dir = home();
        prepare_home(&dir).unwrap();
        let target = dir.join("target");
        std::fs::write(&target, "kept").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(append(&link).is_err(), "opened through a link");
        replace(&link, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "kept");
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "new");
        let volatile = dir.join("volatile");
        std::os::unix::fs::symlink(&target, &volatile).unwrap();
        replace_volatile(&volatile, b"123\n").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "kept");
        assert!(std::fs::symlink_metadata(&volatile).unwrap().is_file());
        replace_volatile(&volatile, b"4\n").unwrap();
        let fifo = dir.join("fifo");
        let c_fifo = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
        replace_volatile(&fifo, b"5\n").unwrap();
        assert_eq!(std::fs::read_to_string(&fifo).unwrap(), "5\n");
        assert_eq!(std::fs::read_to_string(&volatile).unwrap(), "4\n");
        let mode = std::fs::symlink_metadata(&link)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let fresh = dir.join("fresh");
        append(&fresh).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
