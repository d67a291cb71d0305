//! The CLI-daemon protocol: after a `Hello`/`Welcome` handshake, the client sends `Request`
//! frames and reads one `Response` frame for each.

use serde::{Deserialize, Serialize};

use crate::Millis;
use crate::event::Event;
use crate::spec::AppSpec;
use crate::view::ProcessView;

/// Bumped whenever a change to these types would confuse the other side.
pub const PROTOCOL_VERSION: u32 = 3;

/// The client's first frame.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
    /// `pmx update`, from a pmx of any protocol version: its one request is an
    /// `UpdateRequest` frame, answered by `Response::Updating` or `Response::Error`. These
    /// three stay readable across versions: an update is how a daemon gets to a new one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub update: bool,
}

/// The daemon's answer to a compatible `Hello`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Welcome {
    pub version: u32,
    pub daemon_pid: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "request")]
pub enum Request {
    Start(Box<StartRequest>),
    Stop(Targets),
    Restart(Targets),
    Delete(Targets),
    Reset(Targets),
    Describe(Targets),
    SendSignal(SignalRequest),
    List,
    /// PM2's `jlist` array, rendered by the daemon: it is answered by one frame holding the
    /// array itself (not a `Response`), or by a `Response::Error`.
    Jlist,
    History(HistoryRequest),
    Ping,
    Kill,
    Save,
    Resurrect,
    /// The environment an app's processes run with (values included: owner only).
    Env(Targets),
    /// `pmx up`: converge to the apps a config declares.
    Up(Box<UpRequest>),
    /// A config that failed to evaluate: journaled, nothing else changes.
    RejectConfig(RejectedConfig),
    /// `pmx restart --update-env` or with options (`--cron-restart`, `--node-args`): restart
    /// apps with another spec.
    Revise(ReviseRequest),
    /// `pmx rollback`: re-apply an app's spec of an earlier config revision.
    Rollback(RollbackRequest),
    /// `pmx logs`: the log files of the targets; with `follow`, then their new lines.
    Logs(LogsRequest),
    /// `pmx flush`: empty the targets' log files.
    Flush(Targets),
    /// `pmx reloadLogs`: reopen every log file.
    ReloadLogs,
    /// `pmx scale APP N|+N|-N`.
    Scale(ScaleRequest),
    /// `pmx rules`: the loaded rules and what each did last.
    Rules,
    /// `pmx reload`: replace the targets' instances by new ready processes, one at a time.
    Reload(ReloadRequest),
    /// Start registered apps' instances that are not running (`pmx start NAME`, the
    /// dashboard's start).
    StartApps(Targets),
    /// `pmx monit`: answered by a stream of `Monit` frames; sent again on the same connection
    /// to look at another app.
    Monit(MonitRequest),
    /// Every instance's last minute of samples, so a chart opened now starts filled.
    Recent,
    /// `pmx update`: re-execute the daemon in place from `binary` (a `pmxd`; none: the one
    /// running), handing every running process over to it.
    Update(UpdateRequest),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateRequest {
    pub binary: Option<String>,
}

/// The answer to `Update`: the daemon passed the check and is re-executing itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Updating {
    /// When the daemon that answers started: the one after the update started later.
    pub started_at: Millis,
    pub from: String,
    pub to: String,
    pub binary: String,
    /// Processes handed over, and instances that will be taken over instead (stopped and
    /// started again), with why.
    pub handed: usize,
    pub not_handed: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MonitRequest {
    /// The app whose logs and journal events the stream carries.
    pub app: Option<String>,
}

/// One frame of the `monit` stream.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MonitUpdate {
    /// Every instance, once per sample interval.
    pub processes: Option<Vec<ProcessView>>,
    /// The looked-at app's new journal events.
    pub events: Vec<Event>,
    /// The looked-at app's new log lines.
    pub logs: Vec<LogLine>,
    /// Lines skipped because the client fell behind.
    pub missed: u64,
    /// The looked-at app changed: these events and lines replace the ones shown.
    pub fresh: bool,
    /// In the first frame only: every instance's last minute of samples for the charts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent: Vec<RecentSamples>,
}

/// One sample for a chart, `[at, tree CPU %, tree memory bytes]` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Reading(pub Millis, pub f32, pub u64);

/// The answer to `Request::Recent` (a struct: a tagged enum cannot carry a bare list).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecentList {
    pub instances: Vec<RecentSamples>,
}

/// An instance's (by pm_id) last minute of readings, oldest first. (A list, not a map: map
/// keys inside a tagged enum reach serde as strings, which a `u32` key refuses.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentSamples {
    pub id: u32,
    pub samples: Vec<Reading>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReloadRequest {
    pub targets: Vec<String>,
    /// Instances replaced at once (at least 1).
    #[serde(default = "one")]
    pub parallel: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScaleRequest {
    pub target: String,
    pub count: ScaleCount,
}

/// `N` (exactly), `+N` or `-N` (relative to the current count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleCount {
    To(u32),
    Up(u32),
    Down(u32),
}

impl ScaleCount {
    /// The count this asks for, starting from `current`.
    pub fn from(self, current: u32) -> u32 {
        match self {
            ScaleCount::To(n) => n,
            ScaleCount::Up(n) => current.saturating_add(n),
            ScaleCount::Down(n) => current.saturating_sub(n),
        }
    }
}

impl std::str::FromStr for ScaleCount {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let number = |n: &str| {
            n.parse::<u32>()
                .map_err(|_| format!("invalid instance count `{s}`: expected N, +N or -N"))
        };
        match (s.strip_prefix('+'), s.strip_prefix('-')) {
            (Some(n), _) => number(n).map(ScaleCount::Up),
            (_, Some(n)) => number(n).map(ScaleCount::Down),
            _ => number(s).map(ScaleCount::To),
        }
    }
}

/// A config script's rules, sent with `pmx up` for the daemon to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesScript {
    pub source: String,
    pub script: String,
    /// The variables the CLI's evaluation read with `env()`: the daemon's gets the same.
    #[serde(default)]
    pub vars: std::collections::BTreeMap<String, String>,
}

/// One loaded rule, as `pmx rules` shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RuleStatus {
    pub name: String,
    /// `every 15s`, `on exit`.
    pub trigger: String,
    pub runs: u64,
    pub last_run: Option<crate::Millis>,
    /// When an action of the rule was last carried out, and what it was.
    pub last_fired: Option<crate::Millis>,
    pub last_action: Option<String>,
    pub failures: u64,
    pub last_error: Option<String>,
    pub disabled: bool,
    /// Which rule of the standard library declared it, with its arguments (`pmx export`
    /// maps some of them onto the target's own features).
    #[serde(default)]
    pub standard: Option<StandardRule>,
}

/// A rule declared by a function of the standard library (`autoscale("api", #{...})`): the
/// function's name, the app it names and its arguments as the script gave them (`above`:
/// `70.0`, `window`: `1m`), defaults filled in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandardRule {
    pub function: String,
    pub app: String,
    pub args: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RuleList {
    /// The file the rules came from.
    pub source: Option<String>,
    pub rules: Vec<RuleStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogsRequest {
    pub targets: Vec<String>,
    /// Keep the connection open and stream new lines as `LogLines` frames.
    pub follow: bool,
}

/// The files of the instances a `logs`/`flush` request named.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LogSources {
    pub sources: Vec<LogSource>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSource {
    pub app: String,
    pub id: u32,
    pub stream: crate::logs::Stream,
    pub path: String,
}

/// New lines for a follower; `missed` lines were skipped because it fell behind.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LogBatch {
    pub lines: Vec<LogLine>,
    pub missed: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogLine {
    pub app: String,
    pub id: u32,
    pub stream: crate::logs::Stream,
    pub at: Millis,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReviseRequest {
    pub targets: Vec<String>,
    /// The environment to run with from now on (replacing the captured one entirely, so a
    /// variable that is gone is gone); none: the one the apps have.
    pub env: Option<std::collections::BTreeMap<String, String>>,
    /// Options given with `restart`, as PM2's `restart` takes them.
    #[serde(default)]
    pub options: OptionChanges,
}

/// The options `restart` may change (unset: as they are).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptionChanges {
    /// `--cron-restart EXPR`; empty: none any more (`--cron-restart 0`).
    pub cron_restart: Option<String>,
    /// `--node-args "..."` (`--interpreter-args`).
    pub interpreter_args: Option<Vec<String>>,
    /// `--node-args=null`: none at all. A field of its own, so that a CLI and a daemon of
    /// the same protocol read each other's `interpreter_args` as they always did.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub remove_interpreter_args: bool,
    /// `--watch`.
    #[serde(default)]
    pub watch: Option<WatchChange>,
    /// `--name NEW`: the app (one only) is renamed.
    #[serde(default)]
    pub name: Option<String>,
    /// `PM2_DEEP_MONITORING=true` in the environment of `restart`.
    #[serde(default)]
    pub deep_monitoring: Option<bool>,
}

/// What `--watch` does to an app that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatchChange {
    /// `restart --watch`, as PM2: on if it is off (paused by `stop`, or never asked for),
    /// else off.
    Toggle,
    /// `start --watch` of a registered app.
    On,
}

impl OptionChanges {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// `spec` with these changes.
    pub fn apply(&self, spec: &mut crate::spec::AppSpec) {
        if let Some(cron) = &self.cron_restart {
            spec.options.cron_restart = Some(cron.clone()).filter(|c| !c.is_empty());
        }
        if let Some(args) = &self.interpreter_args {
            spec.interpreter_args = Some(args.clone());
        }
        if self.remove_interpreter_args {
            spec.interpreter_args = None;
        }
        if let Some(deep) = self.deep_monitoring {
            spec.options.deep_monitoring = deep;
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollbackRequest {
    pub app: String,
    /// The config revision whose spec to take; none: the spec before the current one.
    pub to: Option<u64>,
    /// Only compute the plan.
    pub dry_run: bool,
}

/// What `up` does with a declared app whose spec did not change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unchanged {
    /// Left alone, started if it is not running (`pmx up`).
    #[default]
    Keep,
    /// Restarted (`pmx start FILE`, as PM2; `restart FILE --update-env`).
    Restart,
    /// Reloaded, one instance at a time (`pmx startOrReload FILE`).
    Reload,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpRequest {
    pub apps: Vec<AppSpec>,
    /// Stop and delete registered apps the config no longer declares.
    pub prune: bool,
    /// Only compute the plan.
    pub dry_run: bool,
    /// The config file, as given.
    pub source: String,
    /// A hash of the config's text.
    pub hash: String,
    /// What becomes of the declared apps whose spec did not change.
    #[serde(default)]
    pub unchanged: Unchanged,
    /// A change of the captured environment counts as a change (`--update-env`).
    #[serde(default)]
    pub update_env: bool,
    /// The script's rules (Rhai configs); they replace the loaded rules.
    #[serde(default)]
    pub rules: Option<RulesScript>,
    /// Registered apps (old name, new name) that `apps` declares under a new name
    /// (`restart ID --name NEW`): the old one goes, the new one keeps its ids. Set by the
    /// daemon only.
    #[serde(skip)]
    pub renamed: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RejectedConfig {
    pub source: String,
    pub errors: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartRequest {
    pub spec: AppSpec,
}

/// Names, ids, or `all`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Targets {
    pub targets: Vec<String>,
    /// `stop --force`: even apps that running apps depend on.
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignalRequest {
    pub signal: i32,
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HistoryRequest {
    /// An app name or `all`.
    pub target: String,
    /// Only the last `limit` events (after the other filters).
    pub limit: Option<usize>,
    /// Only events at or after this time.
    #[serde(default)]
    pub since: Option<Millis>,
    /// Only events before this time.
    #[serde(default)]
    pub until: Option<Millis>,
    /// Only events of this instance (pm_id).
    #[serde(default)]
    pub instance: Option<u32>,
    /// Only events after this sequence number.
    #[serde(default)]
    pub after_seq: Option<u64>,
    /// Keep the connection open and stream new events as `History` frames.
    #[serde(default)]
    pub follow: bool,
}

impl HistoryRequest {
    /// Whether an event passes the time and instance filters.
    pub fn admits(&self, event: &Event) -> bool {
        self.since.is_none_or(|t| event.at >= t)
            && self.until.is_none_or(|t| event.at < t)
            && self.instance.is_none_or(|i| event.instance == Some(i))
            && self.after_seq.is_none_or(|s| event.seq > s)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "response")]
pub enum Response {
    Processes(ProcessList),
    History(HistoryList),
    Pong(Pong),
    Env(EnvList),
    Plan(PlanReport),
    LogSources(LogSources),
    LogLines(LogBatch),
    Rules(RuleList),
    Monit(Box<MonitUpdate>),
    Recent(RecentList),
    /// The daemon stopped every app and is exiting.
    Killed,
    Updating(Updating),
    Error(Failure),
    /// A JSON document the server writes as the frame itself (the answer to `Jlist`).
    #[serde(skip)]
    Document(Vec<u8>),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProcessList {
    pub processes: Vec<ProcessView>,
    /// What the user should know about how the command was carried out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryList {
    pub events: Vec<Event>,
    /// The journal's last sequence number when it was read: a follower asks for what comes
    /// after it (or after its last event).
    #[serde(default)]
    pub head: u64,
    /// Where retention cut the record off, if it removed any of these events.
    #[serde(default)]
    pub cut: Option<RetentionCut>,
    /// A long history comes in pages: ask again with `after_seq` = this for the next one.
    #[serde(default)]
    pub next_after: Option<u64>,
}

/// Retention removed `removed` events of an app (or of the whole journal), the newest of
/// them `through_seq`, recorded at `through_at`: the record before that is gone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionCut {
    pub removed: u64,
    pub through_seq: u64,
    pub through_at: Millis,
}

/// What `pmx up` did (or, with `--dry-run`, would do).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanReport {
    /// The config revision it became (none for a dry run).
    pub revision: Option<u64>,
    pub steps: Vec<crate::plan::Step>,
    /// The rules the config's rules replaced (a config with rules replaces all of them).
    #[serde(default)]
    pub rules: Option<RulesSwap>,
}

/// The names of the rules before and after a config loaded its rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesSwap {
    pub before: Vec<String>,
    pub after: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvList {
    pub apps: Vec<AppEnv>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppEnv {
    pub name: String,
    pub ids: Vec<u32>,
    pub env: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pong {
    pub daemon_pid: u32,
    pub version: String,
    pub started_at: Millis,
    /// Where the daemon serves `/metrics` and the dashboard, if it does.
    #[serde(default)]
    pub http: Option<String>,
}

/// A request that failed, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The request is wrong (bad spec, unknown signal): exit code 2.
    Invalid,
    /// A target names no app.
    NotFound,
    /// The name is taken.
    Conflict,
    /// Client and daemon speak different protocol versions.
    VersionMismatch,
    /// The client's user may not see this (another user than the daemon's).
    Denied,
    /// The daemon could not carry out the request (journal, OS).
    Internal,
    /// The request was carried out and did not succeed (a new instance never became ready).
    Failed,
}

impl Response {
    pub fn failure(kind: FailureKind, message: impl Into<String>) -> Self {
        Response::Error(Failure {
            kind,
            message: message.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{decode, encode};

    fn round_trip(response: &Response) -> Response {
        let frame = encode(response).unwrap();
        decode(&frame[4..]).unwrap()
    }

    /// The chart samples travel inside the tagged `Response`, where a map's integer keys
    /// would not decode: they come back whole.
    #[test]
    fn recent_samples_survive_the_wire() {
        let recent = vec![RecentSamples {
            id: 3,
            samples: vec![Reading(1_000, 12.5, 4096), Reading(2_000, 0.0, 8192)],
        }];
        let list = RecentList {
            instances: recent.clone(),
        };
        let Response::Recent(back) = round_trip(&Response::Recent(list.clone())) else {
            panic!("not a Recent");
        };
        assert_eq!(back, list);
        let update = MonitUpdate {
            recent: recent.clone(),
            ..MonitUpdate::default()
        };
        let Response::Monit(back) = round_trip(&Response::Monit(Box::new(update))) else {
            panic!("not a Monit");
        };
        assert_eq!(back.recent, recent);
    }
}
