//! The handoff of `pmx update`: what a daemon passes to the program it re-executes in its
//! own process (same pid), so that the new daemon adopts every running process (its child
//! still), their output pipes, the sockets it holds and the control socket, instead of
//! restarting anything. Versioned like the journal: a daemon reads its own format and every
//! earlier one; `pmxd --handoff-check` says which it reads, before the old daemon execs it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The format this build writes. 2: Node cluster workers are handed over too (their channel
/// to the daemon, and the sockets their app shares, with the server data).
pub const HANDOFF_VERSION: u32 = 2;
/// The oldest format this build still adopts.
pub const OLDEST_HANDOFF_VERSION: u32 = 1;

/// The variable holding the number of the descriptor (a memfd) the handoff is in.
pub const HANDOFF_FD_VAR: &str = "PMX_HANDOFF_FD";

/// The flag that asks a daemon binary which handoffs it adopts, before it is executed.
pub const CHECK_FLAG: &str = "--handoff-check";

/// What `CHECK_FLAG` prints: `pmx-handoff OLDEST NEWEST VERSION`.
pub fn check_line() -> String {
    format!(
        "pmx-handoff {OLDEST_HANDOFF_VERSION} {HANDOFF_VERSION} {}",
        env!("CARGO_PKG_VERSION")
    )
}

/// A check line read back: whether a handoff of `version` is adopted, and the binary's
/// version. `None` when the line is not one.
pub fn parse_check_line(line: &str) -> Option<(std::ops::RangeInclusive<u32>, String)> {
    let mut words = line.split_whitespace();
    if words.next()? != "pmx-handoff" {
        return None;
    }
    let oldest = words.next()?.parse().ok()?;
    let newest = words.next()?.parse().ok()?;
    let version = words.next()?.to_string();
    Some((oldest..=newest, version))
}

/// Everything the old daemon hands over. Descriptors are numbers in the process, open and
/// inheritable across the exec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Handoff {
    pub version: u32,
    /// The pmx version that handed over.
    pub from: String,
    /// Who asked for the update.
    pub uid: u32,
    /// The home's lock (the pid file, flock'ed).
    pub lock_fd: i32,
    /// The control socket, listening.
    pub socket_fd: i32,
    /// The HTTP listener, if the daemon serves one.
    pub http_fd: Option<i32>,
    /// Sockets held for `listen` apps.
    pub listeners: Vec<HandedListener>,
    /// Every process running for an instance.
    pub runs: Vec<HandedRun>,
    /// Instances waiting to be restarted (after a crash), and when.
    pub waiting: Vec<HandedWait>,
    /// The sockets each app's cluster workers share (the descriptors are in `listeners`).
    pub cluster_ports: Vec<HandedClusterPort>,
}

/// A socket an app's Node cluster workers share, by its address, with the server data the
/// first worker that asked for it gave (every later worker gets the same).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HandedClusterPort {
    pub app: String,
    pub addr: String,
    pub data: serde_json::Value,
}

/// An instance between a crash and its restart: restarted when it was due, not at once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandedWait {
    pub app: String,
    pub id: u32,
    /// When the restart is due (ms since the epoch).
    pub due_at: crate::Millis,
    pub machine: crate::state::Instance,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandedListener {
    /// As `ListenAddr` prints it.
    pub addr: String,
    pub fd: i32,
}

/// One instance's running process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HandedRun {
    pub app: String,
    pub id: u32,
    pub pid: u32,
    /// Its start time (clock ticks after boot), to be sure the pid is still this process.
    pub start_time: Option<u64>,
    pub token: String,
    pub pidfd: Option<i32>,
    pub out: Option<HandedStream>,
    pub err: Option<HandedStream>,
    /// Whether it was online (else still starting: its readiness is awaited again).
    pub online: bool,
    /// When the process started (ms since the epoch): it goes on, so does its uptime.
    pub started_at: Option<crate::Millis>,
    /// The process's channel to the daemon (the Node shim's), if it has one.
    pub channel_fd: Option<i32>,
    /// A Node cluster worker's IPC channel to the daemon, its cluster primary.
    pub worker_channel_fd: Option<i32>,
    /// Its notify socket's path (sd_notify), bound again by the new daemon.
    pub notify: Option<String>,
    /// The shim spoke on the channel (it drains its connections when told to).
    pub shim: bool,
    /// The `pmx set` values it was started with, and everything pmx added to its
    /// environment (for `pmx env`).
    pub conf_env: BTreeMap<String, String>,
    pub injected: BTreeMap<String, String>,
}

/// An output pipe's read end, and the start of a line already read from it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HandedStream {
    pub fd: i32,
    pub partial: Vec<u8>,
}

/// Why a handoff cannot be adopted.
#[derive(Debug, PartialEq, Eq)]
pub struct Unreadable(pub String);

impl Handoff {
    /// Reads a handoff of any format this build adopts.
    pub fn parse(text: &[u8]) -> Result<Handoff, Unreadable> {
        let handoff: Handoff = serde_json::from_slice(text)
            .map_err(|e| Unreadable(format!("the handoff is not readable: {e}")))?;
        if !(OLDEST_HANDOFF_VERSION..=HANDOFF_VERSION).contains(&handoff.version) {
            return Err(Unreadable(format!(
                "handoff format {} (this pmx adopts {OLDEST_HANDOFF_VERSION} to {HANDOFF_VERSION})",
                handoff.version
            )));
        }
        Ok(handoff)
    }

    /// Every descriptor it names.
    pub fn fds(&self) -> Vec<i32> {
        let mut fds = vec![self.lock_fd, self.socket_fd];
        fds.extend(self.http_fd);
        fds.extend(self.listeners.iter().map(|l| l.fd));
        for run in &self.runs {
            fds.extend(run.pidfd);
            fds.extend(run.out.as_ref().map(|s| s.fd));
            fds.extend(run.err.as_ref().map(|s| s.fd));
            fds.extend(run.channel_fd);
            fds.extend(run.worker_channel_fd);
        }
        fds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Handoffs written by each format, kept as they were: every later build must adopt them.
    const FORMAT_1: &str = include_str!("../tests/handoff-v1.json");
    const FORMAT_2: &str = include_str!("../tests/handoff-v2.json");

    #[test]
    fn a_handoff_of_every_earlier_format_is_read() {
        let handoff = Handoff::parse(FORMAT_1.as_bytes()).expect("format 1");
        assert_eq!(handoff.version, 1);
        assert_eq!(handoff.runs.len(), 2);
        let run = &handoff.runs[0];
        assert_eq!((run.app.as_str(), run.id, run.pid), ("api", 0, 4242));
        assert_eq!(
            run.out.as_ref().map(|s| s.partial.as_slice()),
            Some(&b"half a li"[..])
        );
        assert_eq!(handoff.fds().len(), 9);
        assert!(handoff.cluster_ports.is_empty());

        let handoff = Handoff::parse(FORMAT_2.as_bytes()).expect("format 2");
        assert_eq!(handoff.version, 2);
        let worker = &handoff.runs[0];
        assert_eq!(
            (worker.app.as_str(), worker.worker_channel_fd),
            ("web", Some(9))
        );
        assert_eq!(
            handoff.cluster_ports,
            vec![HandedClusterPort {
                app: "web".into(),
                addr: "[::]:3000".into(),
                data: serde_json::json!({ "ticketKeys": "abc" }),
            }]
        );
        assert_eq!(handoff.fds(), vec![3, 4, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn a_newer_or_broken_handoff_is_refused_with_why() {
        let newer = FORMAT_1.replace("\"version\": 1", "\"version\": 99");
        let Err(Unreadable(why)) = Handoff::parse(newer.as_bytes()) else {
            panic!("format 99 adopted");
        };
        assert!(why.contains("handoff format 99"), "{why}");
        assert!(Handoff::parse(b"{").is_err());
    }

    #[test]
    fn the_check_line_reads_back() {
        let (range, version) = parse_check_line(&check_line()).expect("own line");
        assert!(range.contains(&HANDOFF_VERSION));
        assert_eq!(version, env!("CARGO_PKG_VERSION"));
        assert_eq!(parse_check_line("pmx 0.1.0"), None);
    }
}
