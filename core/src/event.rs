//! What the journal records: an `Event` is one thing that happened to an app, with its
//! `Cause`. Records are versioned envelopes that only ever gain fields.

use serde::{Deserialize, Serialize};

use crate::Millis;
use crate::record::Transition;
use crate::spec::AppSpec;
use crate::state::Exit;

/// Version of the event envelope written today. Readers accept every older version.
/// 2: the specs of `AppCreated` and `Saved` may leave their captured environment (`base_env`)
/// to the journal's store of environments, named by the record's `env_refs` (see
/// `pmx_storage`); 1: every record is whole.
pub const EVENT_VERSION: u32 = 2;

/// One journal record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(default = "one")]
    pub v: u32,
    /// Position in the journal; strictly increasing.
    pub seq: u64,
    /// Wall-clock time it was recorded.
    pub at: Millis,
    pub app: String,
    /// The instance's pm_id, when the event concerns one instance.
    #[serde(default)]
    pub instance: Option<u32>,
    pub kind: EventKind,
    pub cause: Cause,
}

fn one() -> u32 {
    1
}

/// An event before the journal gives it a sequence number and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub app: String,
    pub instance: Option<u32>,
    pub kind: EventKind,
    pub cause: Cause,
}

impl NewEvent {
    /// The event as the journal records it: number `seq`, recorded at `at`.
    pub fn stamped(self, seq: u64, at: Millis) -> Event {
        Event {
            v: EVENT_VERSION,
            seq,
            at,
            app: self.app,
            instance: self.instance,
            kind: self.kind,
            cause: self.cause,
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum EventKind {
    /// An app was registered with this spec and these instance ids.
    AppCreated { spec: Box<AppSpec>, ids: Vec<u32> },
    /// The app with these instance ids was removed from the registry, journaled when the
    /// delete is decided (before its processes stop): a later app of the same name has other
    /// ids and is not touched by it. Records without ids (older daemons) name the app only.
    AppDeleted {
        #[serde(default)]
        ids: Vec<u32>,
    },
    /// A command was accepted for the app (before it is carried out).
    Command { verb: String },
    /// An instance changed status.
    Transition(Transition),
    /// A process was started for an instance. `start_time` (clock ticks after boot, from
    /// /proc), `boot` (the kernel's boot id) and `token` identify it beyond its pid, so a later
    /// daemon can tell the same process from a pid reused by another one.
    Spawned {
        pid: u32,
        #[serde(default)]
        start_time: Option<u64>,
        #[serde(default)]
        boot: Option<String>,
        #[serde(default)]
        token: Option<String>,
    },
    /// A process of a previous daemon's run, still live at boot, was stopped.
    OrphanStopped { pid: u32, processes: u32 },
    /// An instance's process ended.
    Exited {
        pid: u32,
        exit: Exit,
        uptime_ms: u64,
    },
    /// A signal was sent to an instance's processes.
    Signalled {
        pid: u32,
        signal: i32,
        processes: u32,
    },
    /// The restart counters were set to zero.
    CountersReset,
    /// `pmx save`: a checkpoint of every app's spec (app is empty); `pmx resurrect` restores
    /// the last one.
    Saved { apps: Vec<AppSpec> },
    /// The daemon started (app is empty).
    DaemonStarted { pid: u32, version: String },
    /// The daemon stopped every app and exited cleanly (app is empty). A `DaemonStarted`
    /// without it means the previous daemon crashed.
    DaemonStopped { pid: u32 },
    /// `pmx up` applied a config (app is empty): revision `revision`, the plan in words.
    ConfigApplied {
        revision: u64,
        source: String,
        hash: String,
        plan: Vec<String>,
    },
    /// What config revision `revision` changed for this app (`+ api`, `~ api: instances 2 → 3`).
    ConfigChanged { revision: u64, change: String },
    /// A config that was refused; nothing changed (app is empty).
    ConfigRejected { source: String, errors: String },
    /// Output of the instance could not be written to `file` (disk full, file gone): from now
    /// on lines are counted and dropped; the app is never blocked by it.
    LogWriteFailed { file: String, error: String },
    /// Writing to `file` works again; `lost_bytes` were dropped since it failed.
    LogWriteRecovered { file: String, lost_bytes: u64 },
    /// The number of instances changed from `from` to `to`; `ids` are the instances now, in
    /// order (the ones that stayed keep their ids).
    Scaled {
        from: u32,
        to: u32,
        ids: Vec<u32>,
        /// Each one's `NODE_APP_INSTANCE`, in the order of `ids`; empty: their positions (as
        /// journals written before scaling down retired the first instances have it).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        indexes: Vec<u32>,
    },
    /// A rule wrote this to the journal (its cause names the rule).
    Note { text: String },
    /// `pmx up` loaded the rules of a config script (app is empty): the script is kept, so a
    /// later daemon loads the same rules.
    RulesLoaded {
        source: String,
        script: String,
        rules: Vec<String>,
        /// The variables the script read with `env()`.
        #[serde(default)]
        vars: std::collections::BTreeMap<String, String>,
    },
    /// A rule threw, looped or ran too long (app is empty); `disabled` once it failed too
    /// often in a row.
    RuleFailed {
        rule: String,
        error: String,
        disabled: bool,
    },
    /// A step of a rolling reload of this instance.
    Reload(ReloadStep),
    /// Retention removed old events (app is empty): `removed` events, the newest of them
    /// `through_seq`. The registry they built lives on in a snapshot.
    Compacted { removed: u64, through_seq: u64 },
    /// The journal was found damaged at boot (app is empty): the damaged files were moved to
    /// `damaged_copy`, `salvaged` events were read back from them, the registry was restored
    /// from the snapshot of `snapshot_seq`, and events after `salvaged_through` up to
    /// `expected_head` are lost.
    JournalRecovered {
        reason: String,
        damaged_copy: String,
        salvaged: u64,
        salvaged_through: u64,
        expected_head: u64,
        snapshot_seq: Option<u64>,
    },
    /// The journal could not be written for `failed_ms` (`error`: a full disk, an I/O
    /// error); the daemon kept acting and held the events meanwhile in memory. Written once
    /// writing works again (app is empty): `kept` events were written late, `lost` events did
    /// not fit the memory buffer and are gone.
    JournalResumed {
        failed_ms: u64,
        error: String,
        kept: u64,
        lost: u64,
    },
}

/// What a rolling reload did to one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "step")]
pub enum ReloadStep {
    /// A new process is starting beside the running one.
    Replacing { old_pid: u32 },
    /// The new process is ready; the old one leaves the rotation and stops.
    Replaced { old_pid: u32, new_pid: u32 },
    /// The new process did not become ready: it is cleaned up, the old one keeps running
    /// and the reload goes no further.
    Failed { old_pid: Option<u32>, error: String },
}

/// Why it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum Cause {
    /// A CLI command, with the uid of the user who ran it.
    User { command: String, uid: u32 },
    /// The app's own process (it exited, it was spawned).
    Process,
    /// A timer of the restart policy (restart delay, kill timeout).
    Policy,
    /// The daemon started and brought the app back.
    Boot,
    /// The daemon is shutting down (`pmx kill`, SIGTERM): desired state is unchanged.
    Shutdown,
    /// A policy: a rule of a config script, or a built-in one (`max_memory_restart`,
    /// `cron_restart`, `watch`), with the figures it read and its reason.
    Rule {
        rule: String,
        reason: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        figures: Vec<String>,
    },
}

impl Cause {
    /// A built-in policy's cause.
    pub fn rule(rule: &str, reason: impl Into<String>) -> Self {
        Cause::Rule {
            rule: rule.to_string(),
            reason: reason.into(),
            figures: Vec::new(),
        }
    }
}

impl EventKind {
    /// Hides the environment values an event carries: of the specs (see
    /// `AppSpec::redact_env`), and those a config script read with `env()`.
    pub fn redact_env(&mut self) {
        match self {
            EventKind::AppCreated { spec, .. } => spec.redact_env(),
            EventKind::Saved { apps } => apps.iter_mut().for_each(AppSpec::redact_env),
            EventKind::RulesLoaded { vars, .. } => vars
                .values_mut()
                .for_each(|v| *v = crate::spec::REDACTED.to_string()),
            _ => {}
        }
    }

    /// The verb of a command event, if it is one.
    pub fn command_verb(&self) -> Option<&str> {
        match self {
            EventKind::Command { verb } => Some(verb),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delete_recorded_by_an_older_daemon_still_reads() {
        let old: EventKind = serde_json::from_str(r#"{"type":"app_deleted"}"#).unwrap();
        assert_eq!(old, EventKind::AppDeleted { ids: Vec::new() });
        let new = serde_json::to_string(&EventKind::AppDeleted { ids: vec![4] }).unwrap();
        assert_eq!(new, r#"{"type":"app_deleted","ids":[4]}"#);
    }
}
