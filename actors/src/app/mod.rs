//! `AppActor`: owns one app — its spec, its instances' state machines and their processes.
//! It feeds `core::state::step` with commands, exits and timer expiries, journals every
//! transition, and carries out the effects (spawn, signal, arm a timer). Nothing else touches
//! an app's processes.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use pmx_core::Millis;
use pmx_core::conf::ModuleConf;
use pmx_core::event::{Cause, EventKind, NewEvent};
use pmx_core::listen::ListenAddr;
use pmx_core::logs::{
    DEFAULT_DATE_FORMAT, LogFiles, LogType, RotateOptions, Stream, log_files, strftime_of,
};
use pmx_core::paths::Paths;
use pmx_core::spec::{AppSpec, RestartPolicy};
use pmx_core::state::{self, Effect, Exit, Input, Instance, KillPolicy, Readiness, Status};
use pmx_core::view::{ProcessView, Usage};
use pmx_storage::Journal;
use rustix::process::{Signal, pidfd_send_signal};
use tokio::sync::{Notify, oneshot};

use crate::clock::now_ms;
use crate::logs::Attach;
use crate::process::reaper::Managed;
use crate::process::{activation, family, identity, spawn};
use crate::sampler::Sampler;

mod cluster;
mod health;
mod messages;
mod policies;
mod reload;
mod takeover;
mod talk;
pub use health::probe;
pub use messages::{Control, Retire, SendSignal, Views};
pub use policies::{Rescale, Watching};
pub use reload::Reload;
pub use takeover::Orphan;
pub use talk::install_shim;

/// How often a stopping instance checks whether its descendants are gone.
const DRAIN_POLL: Duration = Duration::from_millis(20);

/// What every app actor shares with the daemon.
#[derive(Clone)]
pub struct Shared {
    pub paths: Arc<Paths>,
    pub journal: Arc<dyn Journal>,
    pub managed: Managed,
    /// The user the daemon (and so every app) runs as, for the `user` column.
    pub user: Arc<str>,
    /// Wakes the group commit after an asynchronous event was journaled.
    pub commit: Arc<Notify>,
    /// `HOME#PID.START`: run tokens name the home (a later daemon finds its orphans by it)
    /// and never repeat across daemons.
    pub token_prefix: Arc<str>,
    /// The kernel's boot id, journaled with every spawn.
    pub boot: Option<Arc<str>>,
    /// The log thread, which captures every app's output.
    pub logs: crate::logs::LogHub,
    /// Measures every instance; applies `max_memory_restart`.
    pub sampler: crate::sampler::Sampler,
    /// The file watcher of every app with `watch`.
    pub watch: crate::watch::WatchHub,
    /// The rules: told about exits and status changes.
    pub policy: crate::policy::PolicyHandle,
    /// The listening sockets held for apps.
    pub listen: crate::listen::ListenHub,
    /// The dashboard's URL, when the daemon serves `/metrics` and the dashboard.
    pub http: Option<Arc<str>>,
}

pub struct AppActor {
    /// Views share it: they leave the daemon without its captured environment (see
    /// `ProcessView::spec`).
    spec: Arc<AppSpec>,
    /// Each instance's log paths as views show them, made once (cleared when the spec
    /// changes): views are built for every `jlist`.
    shown_logs: RefCell<HashMap<u32, ShownLogs>>,
    created_at: Millis,
    shared: Shared,
    slots: Vec<Slot>,
    waiters: Vec<Waiter>,
    /// The command line, resolved once (shown by `describe`, run by every spawn); empty
    /// while the spec does not resolve (its script is missing).
    command: Arc<[String]>,
    /// Counts spawns, to give each run a unique token.
    runs: u64,
    /// Orphans of a previous daemon being stopped; commands wait in `deferred` meanwhile.
    takeover: Option<takeover::Takeover>,
    deferred: Vec<(Control, oneshot::Sender<Vec<ProcessView>>)>,
    /// Orphans to take over once the actor runs.
    orphans: Vec<Orphan>,
    /// The first file change of a debounce in progress.
    watch_pending: Option<std::path::PathBuf>,
    /// `stop` paused watching (PM2): the spec's paths are kept for `restart --watch`.
    watch_paused: bool,
    /// The git version of the code (`vizion`), and when it was read: a spawn reads it again
    /// only after `VERSIONING_FRESH`, so a crash loop does not read `.git` at every respawn.
    versioning: Option<(Instant, Option<Arc<pmx_core::versioning::Versioning>>)>,
    /// When a launched instance counts as online (from the spec).
    readiness: Readiness,
    /// The sockets the app's instances inherit, bound at the first spawn.
    listeners: Vec<(ListenAddr, Arc<OwnedFd>)>,
    /// The sockets its cluster workers asked for.
    cluster_ports: cluster::ClusterPorts,
    /// Gives every slot a key of its own.
    keys: u64,
    /// A rolling reload in progress.
    rolling: Option<reload::Rolling>,
    /// Failed health checks in a row.
    health_failures: u32,
    /// Actions policies took on each instance (by id), by policy name: for `/metrics`.
    policy_actions: HashMap<u32, BTreeMap<String, u64>>,
}

/// How long a read of the app's git version stays good for the next spawns.
const VERSIONING_FRESH: Duration = Duration::from_secs(10);

/// An instance's out and error log paths, as views show them.
type ShownLogs = (Arc<str>, Arc<str>);

/// One instance, or during a reload the process that is to replace one (`incoming`: it
/// shares the instance's id; commands and views see only the instance).
struct Slot {
    /// Callbacks (exits, timers, readiness) find their slot by key: ids are shared while an
    /// instance is being replaced.
    key: u64,
    id: u32,
    index: u32,
    machine: Instance,
    run: Option<Run>,
    incoming: bool,
}

/// The live process of an instance.
struct Run {
    pid: u32,
    pidfd: Option<Arc<OwnedFd>>,
    token: String,
    /// How the process talks to the daemon (readiness, draining), when it may.
    talk: Option<talk::Talk>,
    /// A stop signal held back while the process drains its connections.
    held_signal: Option<(i32, Cause)>,
    /// What the run's agent reported (PM2's `axm_monitor`, `axm_options`); shared with the
    /// views, which are made often.
    agent: Option<Arc<pmx_core::agent::AgentReport>>,
    /// The `pmx set` values the run was started with.
    conf_env: Arc<BTreeMap<String, String>>,
    /// Everything pmx added to the run's environment.
    injected: Arc<BTreeMap<String, String>>,
}

/// A command waiting for its instances to settle.
struct Waiter {
    ids: Vec<u32>,
    tx: oneshot::Sender<Vec<ProcessView>>,
}

impl AppActor {
    pub fn new(spec: Arc<AppSpec>, ids: &[u32], created_at: Millis, shared: Shared) -> Self {
        let command = spawn::resolve(&spec).unwrap_or_default();
        let slots = ids
            .iter()
            .enumerate()
            .map(|(index, &id)| Slot {
                key: index as u64,
                id,
                index: index as u32,
                machine: Instance::new(),
                run: None,
                incoming: false,
            })
            .collect();
        Self {
            readiness: spec.readiness(),
            listeners: Vec::new(),
            cluster_ports: cluster::ClusterPorts::default(),
            keys: ids.len() as u64,
            rolling: None,
            health_failures: 0,
            policy_actions: HashMap::new(),
            shown_logs: RefCell::default(),
            spec,
            created_at,
            shared,
            slots,
            waiters: Vec::new(),
            command: command.into(),
            runs: 0,
            takeover: None,
            deferred: Vec::new(),
            orphans: Vec::new(),
            watch_pending: None,
            watch_paused: false,
            versioning: None,
        }
    }

    /// Restart counts carried over from the actor this one replaces (by instance id).
    pub fn with_restarts(mut self, restarts: &BTreeMap<u32, u32>) -> Self {
        for slot in &mut self.slots {
            if let Some(&n) = restarts.get(&slot.id) {
                slot.machine.restarts = n;
            }
        }
        self
    }

    /// Processes of a previous daemon's runs of this app that still run: they are stopped
    /// before anything else happens to the app.
    pub fn with_orphans(mut self, orphans: Vec<Orphan>) -> Self {
        self.orphans = orphans;
        self
    }

    /// Whether the app's command runs Node (its program, as resolved).
    fn runs_node(&self) -> bool {
        self.command
            .first()
            .is_some_and(|p| pmx_core::spec::is_node(p))
    }

    /// A Node app in cluster mode: its instances are cluster workers of the daemon.
    fn cluster_worker(&self) -> bool {
        self.spec.cluster_mode(&self.command)
    }

    /// When slot `i` counts as online. A cluster worker says so (Node's `online`, or, when
    /// it replaces an instance in a reload, listening), or `listen_timeout` passes, as under
    /// PM2 (see the `Heard` handler).
    fn effective_readiness(&self) -> Readiness {
        match self.readiness {
            Readiness::AtSpawn if self.cluster_worker() => Readiness::ReportedOrAfter {
                timeout_ms: self.spec.options.listen_timeout_ms,
            },
            other => other,
        }
    }

    fn kill_policy(&self) -> KillPolicy {
        KillPolicy {
            signal: self.spec.kill_signal,
            timeout_ms: self.spec.kill_timeout_ms,
        }
    }

    fn journal(&self, instance: Option<u32>, kind: EventKind, cause: Cause) {
        let event = NewEvent {
            app: self.spec.name.clone(),
            instance,
            kind,
            cause,
        };
        match self.shared.journal.append(vec![event]) {
            Ok(_) => self.shared.commit.notify_one(),
            Err(e) => crate::say!("pmx: journal append failed for {}: {e}", self.spec.name),
        }
    }

    /// Feeds one input to instance `i` and carries out what the machine decides.
    fn feed(&mut self, i: usize, input: Input, cause: Cause, ctx: &mut Context<Self>) {
        let kill = self.kill_policy();
        let ready = self.effective_readiness();
        if let (Input::Command(_), Cause::Rule { rule, .. }) = (&input, &cause) {
            let id = self.slots[i].id;
            let count = self.policy_actions.entry(id).or_default();
            *count.entry(rule.clone()).or_default() += 1;
        }
        let slot = &mut self.slots[i];
        // A process replacing an instance gets one chance: the reload fails if it exits.
        let once;
        let restart = if slot.incoming {
            once = RestartPolicy {
                autorestart: false,
                ..self.spec.restart.clone()
            };
            &once
        } else {
            &self.spec.restart
        };
        let step = state::step(&slot.machine, restart, kill, ready, input, now_ms());
        slot.machine = step.next;
        let id = slot.id;
        if let Some(t) = step.transition {
            self.shared.policy.became(&self.spec.name, id, t.to);
            self.journal(Some(id), EventKind::Transition(t), cause.clone());
        }
        for effect in step.effects {
            self.execute(i, effect, cause.clone(), ctx);
        }
    }

    fn execute(&mut self, i: usize, effect: Effect, cause: Cause, ctx: &mut Context<Self>) {
        match effect {
            Effect::Spawn => self.spawn(i, ctx),
            Effect::Signal(signal) => self.stop_signal(i, signal, cause, ctx),
            Effect::Kill => self.signal(i, 9, Cause::Policy),
            Effect::ArmTimer {
                kind,
                token,
                after_ms,
            } => {
                let input = Input::Timer { kind, token };
                if after_ms == 0 {
                    self.feed(i, input, Cause::Policy, ctx);
                } else {
                    let key = self.slots[i].key;
                    ctx.run_later(Duration::from_millis(after_ms), move |act, ctx| {
                        let Some(i) = act.find(key) else { return };
                        act.feed(i, input, Cause::Policy, ctx);
                        act.answer_waiters(ctx);
                    });
                }
            }
        }
    }

    fn log_files(&self, id: u32) -> LogFiles {
        log_files(&self.spec, &self.shared.paths, id)
    }

    /// Hands a spawned process's output pipes to the log thread; `conf`: `pmx set`'s
    /// pm2-logrotate values, under the app's own rotation settings.
    fn capture(
        &self,
        id: u32,
        files: LogFiles,
        out: Option<OwnedFd>,
        err: Option<OwnedFd>,
        conf: &RotateOptions,
    ) {
        let o = &self.spec.options;
        let rotate = o.log_rotate.over(conf);
        let prefix = (o.time || o.log_date_format.is_some())
            .then(|| strftime_of(o.log_date_format.as_deref().unwrap_or(DEFAULT_DATE_FORMAT)));
        for (stream, pipe) in [(Stream::Out, out), (Stream::Err, err)] {
            let Some(pipe) = pipe else { continue };
            self.shared.logs.attach(Attach {
                pipe,
                app: self.spec.name.clone(),
                id,
                stream,
                file: files.of(stream).map(Path::to_path_buf),
                combined: files.combined.clone(),
                rotate: rotate.clone(),
                prefix: prefix.clone(),
                json: o.log_type == LogType::Json,
            });
        }
    }

    fn spawn(&mut self, i: usize, ctx: &mut Context<Self>) {
        if self.command.is_empty() {
            match spawn::resolve(&self.spec) {
                Ok(argv) => self.command = argv.into(),
                Err(error) => return self.spawn_failed(i, error.into(), ctx),
            }
        }
        if let Err(error) = self.bind_listeners() {
            return self.spawn_failed(i, error.into(), ctx);
        }
        self.runs += 1;
        let (key, id, index) = (self.slots[i].key, self.slots[i].id, self.slots[i].index);
        let token = format!("{}#{id}#{}", self.shared.token_prefix, self.runs);
        let cluster_worker = self.cluster_worker();
        let hears = cluster_worker || self.spec.options.shutdown_with_message;
        // Every Node app talks: its shim reports the figures PM2's agent would (heap, event
        // loop) and forwards the app's own @pm2/io messages.
        let talk = if self.readiness == Readiness::AtSpawn && !hears && !self.runs_node() {
            None
        } else {
            let primary = cluster_worker.then(|| cluster::Primary {
                key,
                addr: ctx.address(),
                ports: self.cluster_ports.clone(),
                hub: self.shared.listen.clone(),
                inherited: (self.listeners.iter().enumerate())
                    .map(|(n, (_, fd))| (activation::FIRST_FD + n as i32, fd.clone()))
                    .collect(),
            });
            let run = (key, id, self.runs);
            match talk::open(&self.shared.paths, run, ctx.address(), primary) {
                Ok(opened) => Some(opened),
                Err(error) => return self.spawn_failed(i, error, ctx),
            }
        };
        let stale = self
            .versioning
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= VERSIONING_FRESH);
        if self.spec.options.vizion && stale {
            let read = crate::versioning::read(Path::new(&self.spec.cwd)).map(Arc::new);
            self.versioning = Some((Instant::now(), read));
        }
        // `pmx set` values, read at each spawn as PM2 reads them at each start.
        let conf = match ModuleConf::load(&self.shared.paths) {
            Ok(conf) => conf,
            Err(e) => {
                let file = self.shared.paths.module_conf();
                crate::say!("pmx: {} ignored: {e}", file.display());
                ModuleConf::default()
            }
        };
        let conf_env = conf.env_of(&self.spec.name);
        let mut env: Vec<_> = conf_env.clone().into_iter().collect();
        if self.spec.options.deep_monitoring {
            env.push(("PMX_DEEP_MONITORING".into(), "1".into()));
        }
        env.extend(self.instance_env(index));
        let mut fds: Vec<_> = self
            .listeners
            .iter()
            .map(|(_, fd)| fd.as_raw_fd())
            .collect();
        if let Some(opened) = &talk {
            let paths = &self.shared.paths;
            env.extend(opened.env(fds.len(), self.runs, &self.spec, paths));
            fds.extend(opened.child_fds());
        } else if self.runs_node() {
            env.push(talk::node_options(&self.spec, &self.shared.paths));
        }
        // What pmx adds to the app's environment, for `pmx env`.
        let mut injected: BTreeMap<String, String> = env.iter().cloned().collect();
        injected.insert("PMX_ID".into(), id.to_string());
        injected.insert("PMX_NAME".into(), self.spec.name.clone());
        let files = self.log_files(id);
        let request = spawn::SpawnRequest {
            spec: &self.spec,
            argv: &self.command,
            id,
            token: &token,
            env,
            fds,
            capture_out: files.out.is_some() || files.combined.is_some(),
            capture_err: files.err.is_some() || files.combined.is_some(),
        };
        let spawned = spawn::spawn(&request);
        // The child has its copy of the channel's end now; the daemon keeps its own side.
        let talk = talk.map(talk::Opened::into_talk);
        match spawned {
            Ok(spawned) => {
                let pid = spawned.pid;
                self.capture(id, files, spawned.out, spawned.err, &conf.rotation());
                self.shared.managed.insert(pid);
                self.shared.sampler.watch(
                    id,
                    pid,
                    self.spec.options.memory_policy(),
                    ctx.address().recipient(),
                );
                let kind = EventKind::Spawned {
                    pid,
                    start_time: identity::start_time(pid),
                    boot: self.shared.boot.as_deref().map(String::from),
                    token: Some(token.clone()),
                };
                self.journal(Some(id), kind, Cause::Process);
                if let Some(path) = self.spec.options.pid_file_of(id)
                    && let Err(e) = pmx_core::private::replace(&path, format!("{pid}\n").as_bytes())
                {
                    crate::say!(
                        "pmx: {}: cannot write {}: {e}",
                        self.spec.name,
                        path.display()
                    );
                }
                self.slots[i].run = Some(Run {
                    pid,
                    pidfd: spawned.pidfd,
                    token,
                    talk,
                    held_signal: None,
                    agent: None,
                    conf_env: Arc::new(conf_env),
                    injected: {
                        if injected.contains_key("LISTEN_FDS") {
                            injected.insert("LISTEN_PID".into(), pid.to_string());
                        }
                        Arc::new(injected)
                    },
                });
                let wait = spawn::exit_of(
                    pid,
                    self.slots[i].run.as_ref().and_then(|r| r.pidfd.clone()),
                );
                ctx.spawn(wait.into_actor(self).map(move |exit, act, ctx| {
                    if let Some(i) = act.find(key) {
                        act.exited(i, pid, exit, ctx);
                    }
                    act.answer_waiters(ctx);
                }));
                self.feed(i, Input::Spawned { pid }, Cause::Process, ctx);
            }
            Err(error) => self.spawn_failed(i, error, ctx),
        }
    }

    fn spawn_failed(&mut self, i: usize, error: spawn::SpawnError, ctx: &mut Context<Self>) {
        let input = Input::SpawnFailed {
            error: error.message,
            transient: error.transient,
        };
        self.feed(i, input, Cause::Process, ctx);
    }

    /// Binds (or takes from another actor of the same app) the sockets the spec lists: all
    /// of them or none, so a failed bind is tried again at the next spawn.
    fn bind_listeners(&mut self) -> Result<(), String> {
        if !self.listeners.is_empty() {
            return Ok(());
        }
        self.listeners = self
            .spec
            .listen_addrs()
            .into_iter()
            .map(|addr| Ok((addr.clone(), self.shared.listen.acquire(&addr)?)))
            .collect::<Result<_, String>>()?;
        Ok(())
    }

    /// The variables that tell an instance who it is and what it listens on.
    fn instance_env(&self, index: u32) -> Vec<(String, String)> {
        let o = &self.spec.options;
        let mut env = vec![(o.instance_var.clone(), index.to_string())];
        if let Some(on) = o.source_map_support {
            env.push(("PMX_SOURCE_MAPS".into(), u8::from(on).to_string()));
        }
        if let Some(var) = &o.increment_var {
            let base = self
                .spec
                .env
                .get(var)
                .or_else(|| self.spec.base_env.get(var));
            if let Some(base) = base.and_then(|b| b.trim().parse::<u64>().ok()) {
                env.push((var.clone(), (base + u64::from(index)).to_string()));
            }
        }
        if self.listeners.is_empty() {
            return env;
        }
        let names: Vec<String> = self
            .listeners
            .iter()
            .map(|(addr, _)| addr.port().map_or("unix".into(), |p| p.to_string()))
            .collect();
        let shim: Vec<serde_json::Value> = self
            .listeners
            .iter()
            .enumerate()
            .map(|(n, (addr, _))| {
                let fd = activation::FIRST_FD + n as i32;
                match addr {
                    ListenAddr::Tcp(a) => serde_json::json!({ "fd": fd, "port": a.port() }),
                    ListenAddr::Unix(p) => serde_json::json!({ "fd": fd, "path": p }),
                }
            })
            .collect();
        env.push(("LISTEN_FDS".into(), self.listeners.len().to_string()));
        env.push(("LISTEN_FDNAMES".into(), names.join(":")));
        env.push((
            "PMX_LISTEN".into(),
            serde_json::Value::from(shim).to_string(),
        ));
        if let Some(port) = self.listeners.iter().find_map(|(a, _)| a.port()) {
            env.push(("PORT".into(), port.to_string()));
        }
        env
    }

    /// Signals the instance's whole family: the process through its pidfd, the rest by pid.
    fn signal(&mut self, i: usize, signal: i32, cause: Cause) {
        let slot = &self.slots[i];
        let Some(run) = &slot.run else { return };
        let mut count = 0;
        let main_signalled = match (&run.pidfd, Signal::from_named_raw(signal)) {
            (Some(fd), Some(sig)) => pidfd_send_signal(fd, sig).is_ok(),
            _ => false,
        };
        count += main_signalled as u32;
        let others: Vec<u32> =
            family::members(Some(run.pid), run.pid, &run.token, &self.shared.managed)
                .into_iter()
                .filter(|&p| p != run.pid || !main_signalled)
                .collect();
        count += family::signal_all(&others, signal);
        let kind = EventKind::Signalled {
            pid: run.pid,
            signal,
            processes: count,
        };
        self.journal(Some(slot.id), kind, cause);
    }

    fn exited(&mut self, i: usize, pid: u32, exit: Exit, ctx: &mut Context<Self>) {
        self.shared.managed.remove(pid);
        self.shared.sampler.unwatch(self.slots[i].id, pid);
        self.shared
            .policy
            .exited(&self.spec.name, self.slots[i].id, exit);
        let slot = &mut self.slots[i];
        let uptime_ms = now_ms().saturating_sub(slot.machine.started_at.unwrap_or(0));
        let id = slot.id;
        let stopping = slot.machine.status == Status::Stopping;
        let run = slot.run.take_if(|r| r.pid == pid);
        // Only this run's file: during a reload the process replacing it wrote its own.
        if let Some(path) = self.spec.options.pid_file_of(id)
            && std::fs::read_to_string(&path).is_ok_and(|t| t.trim() == pid.to_string())
        {
            let _ = std::fs::remove_file(path);
        }
        self.journal(
            Some(id),
            EventKind::Exited {
                pid,
                exit,
                uptime_ms,
            },
            Cause::Process,
        );
        match run {
            // A stop is complete only when everything the run started is gone too.
            Some(run) if stopping => {
                let deadline = now_ms() + self.spec.kill_timeout_ms;
                self.drain(i, run, exit, deadline, ctx);
            }
            // Respawn first: the leftovers scan is not on the crash-to-respawn path, and the
            // new run has its own token and process group.
            Some(run) => {
                self.feed(i, Input::Exited { pid, exit }, Cause::Process, ctx);
                self.clean_up_after_crash(run);
            }
            None => self.feed(i, Input::Exited { pid, exit }, Cause::Process, ctx),
        }
    }

    /// Waits for the rest of a stopped run's family (it already has the stop signal), SIGKILLs
    /// what is left at `deadline`, then lets the machine see the exit.
    fn drain(&mut self, i: usize, run: Run, exit: Exit, deadline: Millis, ctx: &mut Context<Self>) {
        let left = family::members(None, run.pid, &run.token, &self.shared.managed);
        if !left.is_empty() && now_ms() < deadline {
            let key = self.slots[i].key;
            ctx.run_later(DRAIN_POLL, move |act, ctx| {
                if let Some(i) = act.find(key) {
                    act.drain(i, run, exit, deadline, ctx)
                }
            });
            return;
        }
        if !left.is_empty() {
            let processes = family::signal_all(&left, 9);
            let kind = EventKind::Signalled {
                pid: run.pid,
                signal: 9,
                processes,
            };
            self.journal(Some(self.slots[i].id), kind, Cause::Policy);
        }
        self.feed(i, Input::Exited { pid: run.pid, exit }, Cause::Process, ctx);
        self.answer_waiters(ctx);
    }

    /// What a crashed run left behind gets the stop signal now and SIGKILL after
    /// `kill_timeout`, while the next run starts.
    fn clean_up_after_crash(&self, run: Run) {
        let managed = &self.shared.managed;
        let left = family::members(None, run.pid, &run.token, managed);
        if left.is_empty() {
            return;
        }
        family::signal_all(&left, self.spec.kill_signal);
        let timeout = Duration::from_millis(self.spec.kill_timeout_ms);
        let managed = managed.clone();
        actix::spawn(async move {
            tokio::time::sleep(timeout).await;
            let left = family::members(None, run.pid, &run.token, &managed);
            family::signal_all(&left, 9);
        });
    }

    /// Where instance `id` is among the slots (not the process replacing it in a reload).
    fn position(&self, id: u32) -> Option<usize> {
        self.slots.iter().position(|s| s.id == id && !s.incoming)
    }

    /// Where the slot with `key` is (callbacks hold keys: slots come and go).
    fn find(&self, key: u64) -> Option<usize> {
        self.slots.iter().position(|s| s.key == key)
    }

    /// A new slot for instance `id`, stopped.
    fn new_slot(&mut self, id: u32, index: u32, incoming: bool) -> Slot {
        self.keys += 1;
        Slot {
            key: self.keys,
            id,
            index,
            machine: Instance::new(),
            run: None,
            incoming,
        }
    }

    /// The instances (all when `ids` is `None`), never a process replacing one.
    fn selected(&self, ids: &Option<Vec<u32>>) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&i| {
                !self.slots[i].incoming
                    && ids
                        .as_ref()
                        .is_none_or(|ids| ids.contains(&self.slots[i].id))
            })
            .collect()
    }

    fn views(&mut self, ids: &Option<Vec<u32>>) -> Vec<ProcessView> {
        self.selected(ids)
            .into_iter()
            .map(|i| self.view(i))
            .collect()
    }

    fn view(&self, i: usize) -> ProcessView {
        let slot = &self.slots[i];
        let (id, index) = (slot.id, slot.index);
        let figures = match slot.machine.pid {
            Some(pid) => self
                .shared
                .sampler
                .figures(id)
                .unwrap_or_else(|| Sampler::first_look(pid)),
            None => Default::default(),
        };
        let (out_log, error_log) = self
            .shown_logs
            .borrow_mut()
            .entry(id)
            .or_insert_with(|| {
                let files = self.log_files(id);
                let shown = |p: Option<&Path>| -> Arc<str> {
                    p.map_or("/dev/null".into(), |p| p.to_string_lossy().into())
                };
                (shown(files.out.as_deref()), shown(files.err.as_deref()))
            })
            .clone();
        let loss = self.shared.logs.loss(id);
        let m = &self.slots[i].machine;
        ProcessView {
            id,
            name: self.spec.name.clone(),
            index,
            status: m.status,
            pid: m.pid,
            restarts: m.restarts,
            unstable_restarts: m.unstable_restarts,
            started_at: m.started_at.filter(|_| m.pid.is_some()),
            created_at: self.created_at,
            cpu: figures.latest.cpu,
            memory: figures.latest.memory,
            usage: Usage {
                tree_cpu: figures.latest.tree_cpu,
                tree_memory: figures.latest.tree_memory,
                processes: figures.latest.processes,
                cpu_avg: figures.cpu_avg,
                memory_avg: figures.memory_avg,
            },
            user: self.shared.user.clone(),
            last_exit: m.last_exit,
            error: m.error.clone(),
            command: self.command.clone(),
            out_log,
            error_log,
            log_lost_bytes: loss.as_ref().map_or(0, |l| l.bytes),
            log_error: loss.map(|l| l.last_error),
            output: self.shared.logs.written(id),
            policy_actions: self.policy_actions.get(&id).cloned().unwrap_or_default(),
            watch_paused: self.watch_paused,
            agent: slot.run.as_ref().and_then(|r| r.agent.clone()),
            conf_env: slot
                .run
                .as_ref()
                .map(|r| r.conf_env.clone())
                .unwrap_or_default(),
            injected: slot
                .run
                .as_ref()
                .map(|r| r.injected.clone())
                .unwrap_or_default(),
            versioning: self.versioning.as_ref().and_then(|(_, v)| v.clone()),
            spec: self.spec.clone(),
        }
    }

    /// Moves a reload on, then answers every waiter whose instances have all settled.
    fn answer_waiters(&mut self, ctx: &mut Context<Self>) {
        self.advance_reload(ctx);
        let mut i = 0;
        while i < self.waiters.len() {
            let ids = Some(self.waiters[i].ids.clone());
            let settled = self
                .selected(&ids)
                .iter()
                .all(|&s| self.slots[s].machine.status.is_settled());
            if settled {
                let waiter = self.waiters.swap_remove(i);
                let views = self.views(&ids);
                let _ = waiter.tx.send(views);
            } else {
                i += 1;
            }
        }
    }
}
