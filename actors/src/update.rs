//! `pmx update`, the process's side: checking that a binary adopts this build's handoff,
//! writing the handoff and executing the binary in this process (same pid: the apps stay
//! its children), and, in the new program, reading the handoff back. The actors' side is in
//! `app::handover` and `daemon::update`.

use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pmx_core::handoff::{
    CHECK_FLAG, HANDOFF_FD_VAR, HANDOFF_VERSION, HandedListener, HandedStream, HandedWait, Handoff,
    parse_check_line,
};
use pmx_core::logs::Stream;

use crate::app::Handed;
use crate::listen::ListenHub;
use crate::logs::Detached;

/// An update checked and gathered, waiting for the answer to reach the client.
pub struct Prepared {
    pub binary: PathBuf,
    pub uid: u32,
    pub runs: Vec<Handed>,
    pub waiting: Vec<HandedWait>,
    pub cluster_ports: Vec<pmx_core::handoff::HandedClusterPort>,
    pub streams: Vec<Detached>,
}

/// Where the daemon's update handler leaves what `run` executes.
pub type Pending = Arc<Mutex<Option<Prepared>>>;

/// The descriptors only `run` holds.
pub struct Held {
    pub lock: RawFd,
    pub socket: RawFd,
    pub http: Option<RawFd>,
}

/// How long a binary may take to say which handoffs it adopts.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `binary --handoff-check`: its version when it adopts this build's handoff, else
/// why not, in words for the user.
pub fn check(binary: &Path) -> Result<String, String> {
    let shown = binary.display();
    let mut child = std::process::Command::new(binary)
        .arg(CHECK_FLAG)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    // Its output, read to its end: the daemon's reaper may reap the process itself (it is
    // a subreaper), so its exit status is not waited for.
    let Some(said) = child.stdout.take().and_then(read_within) else {
        // Still running (its output is open): not reaped, so the pid is still its own.
        let _ = child.kill();
        return Err(format!("{shown} did not answer {CHECK_FLAG} within 5 s"));
    };
    let not_pmx =
        || format!("{shown} is not a pmx daemon that can take over ({CHECK_FLAG} failed)");
    let (adopts, version) = parse_check_line(said.trim()).ok_or_else(not_pmx)?;
    if !adopts.contains(&HANDOFF_VERSION) {
        return Err(format!(
            "{shown} (pmx {version}) adopts handoff formats {} to {}, this daemon writes {HANDOFF_VERSION}: stop the apps and restart the daemon instead (`pmx kill`, then `pmx resurrect`)",
            adopts.start(),
            adopts.end()
        ));
    }
    Ok(version)
}

/// What `out` says until it closes, if that is within `CHECK_TIMEOUT`.
fn read_within(out: std::process::ChildStdout) -> Option<String> {
    use rustix::event::{PollFd, PollFlags, poll};
    let deadline = Instant::now() + CHECK_TIMEOUT;
    let mut said = Vec::new();
    let mut buffer = [0u8; 512];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let timeout = rustix::event::Timespec::try_from(left).ok()?;
        let mut fds = [PollFd::new(&out, PollFlags::IN)];
        if poll(&mut fds, Some(&timeout)).ok()? == 0 {
            return None;
        }
        match rustix::io::read(&out, &mut buffer) {
            Ok(0) => return Some(String::from_utf8_lossy(&said).into_owned()),
            Ok(n) if said.len() < 4096 => said.extend_from_slice(&buffer[..n]),
            Ok(_) => return None,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return None,
        }
    }
}

/// The handoff of `prepared` with every descriptor it names made inheritable.
fn handoff(prepared: Prepared, held: &Held, listen: &ListenHub) -> Handoff {
    let mut streams = prepared.streams;
    let mut take = |id: u32, kind: Stream| {
        let at = streams
            .iter()
            .position(|d| d.id == id && d.stream == kind)?;
        let d = streams.swap_remove(at);
        Some(HandedStream {
            fd: d.pipe.into_raw_fd(),
            partial: d.partial,
        })
    };
    let runs = prepared
        .runs
        .into_iter()
        .map(|h| {
            let mut run = h.run;
            run.out = take(run.id, Stream::Out);
            run.err = take(run.id, Stream::Err);
            run.pidfd = h.pidfd.map(IntoRawFd::into_raw_fd);
            run.channel_fd = h.channel.map(IntoRawFd::into_raw_fd);
            run.worker_channel_fd = h.worker.map(IntoRawFd::into_raw_fd);
            run
        })
        .collect();
    // Streams of processes not handed over close here: the new daemon replaces those
    // processes anyway.
    drop(streams);
    let listeners = listen
        .held()
        .into_iter()
        .map(|(addr, fd)| HandedListener {
            addr,
            // The actors holding it live until the exec.
            fd: fd.as_raw_fd(),
        })
        .collect();
    let handoff = Handoff {
        version: HANDOFF_VERSION,
        from: env!("CARGO_PKG_VERSION").to_string(),
        uid: prepared.uid,
        lock_fd: held.lock,
        socket_fd: held.socket,
        http_fd: held.http,
        listeners,
        runs,
        waiting: prepared.waiting,
        cluster_ports: prepared.cluster_ports,
    };
    for fd in handoff.fds() {
        inheritable(fd);
    }
    handoff
}

fn inheritable(fd: RawFd) {
    // SAFETY: every number in the handoff is a descriptor this process holds open until the
    // exec; it is only borrowed here.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let _ = rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty());
}

/// Executes `binary` in this process with the handoff; returns only if that failed, after
/// trying this process's own program with the same handoff.
pub fn exec(
    prepared: Prepared,
    held: &Held,
    listen: &ListenHub,
    settings: &str,
    home: &Path,
) -> String {
    let binary = prepared.binary.clone();
    let handoff = handoff(prepared, held, listen);
    let memfd = match write_memfd(&handoff) {
        Ok(fd) => fd,
        Err(e) => return format!("cannot write the handoff: {e}"),
    };
    let run = |program: &Path| {
        std::process::Command::new(program)
            .arg("--settings")
            .arg(settings)
            .env(HANDOFF_FD_VAR, memfd.as_raw_fd().to_string())
            .env("PMX_HOME", home)
            .exec()
    };
    let first = run(&binary);
    // The program on disk could not be run: the one running is still in memory.
    let again = run(Path::new("/proc/self/exe"));
    format!(
        "cannot execute {}: {first}; nor this daemon again: {again}",
        binary.display()
    )
}

fn write_memfd(handoff: &Handoff) -> std::io::Result<OwnedFd> {
    let fd = rustix::fs::memfd_create("pmx-handoff", rustix::fs::MemfdFlags::empty())?;
    let mut file = std::fs::File::from(fd);
    file.write_all(&serde_json::to_vec(handoff).map_err(std::io::Error::other)?)?;
    file.rewind()?;
    Ok(file.into())
}

/// The handoff a previous daemon of this process left, if it executed this one (read once).
pub fn take() -> Option<Result<Handoff, String>> {
    let fd: RawFd = std::env::var(HANDOFF_FD_VAR).ok()?.parse().ok()?;
    // SAFETY: the previous program of this process opened it for us and named it; nothing
    // else in this process knows the number.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut text = Vec::new();
    if let Err(e) = file.read_to_end(&mut text) {
        return Some(Err(format!("cannot read the handoff: {e}")));
    }
    Some(Handoff::parse(&text).map_err(|e| e.0))
}

/// Takes ownership of a descriptor named in the handoff.
pub fn own(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: the handoff names descriptors the previous program left open for this one,
    // each once; a number that is not open (fcntl fails) is not taken.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    if rustix::io::fcntl_getfd(owned.as_fd()).is_err() {
        std::mem::forget(owned);
        return None;
    }
    // Not inherited further (apps get only what the daemon gives them).
    let _ = rustix::io::fcntl_setfd(owned.as_fd(), rustix::io::FdFlags::CLOEXEC);
    Some(owned)
}
