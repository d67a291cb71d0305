//! Starting an instance's process: its command line and environment, its listening sockets,
//! its output handed to the log thread, and what a failed spawn does.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use pmx_core::conf::ModuleConf;
use pmx_core::event::{Cause, EventKind};
use pmx_core::listen::ListenAddr;
use pmx_core::logs::{
    DEFAULT_DATE_FORMAT, LogFiles, LogType, RotateOptions, Stream, log_files, strftime_of,
};
use pmx_core::state::{Input, Readiness};

use super::{AppActor, Run, VERSIONING_FRESH, cluster, talk};
use crate::logs::Attach;
use crate::process::spawner::Fresh;
use crate::process::{activation, spawn};

/// An output pipe's read end and the start of a line already read from it (by the daemon
/// before a `pmx update`), if the process has that stream captured.
pub type Pipe = Option<(OwnedFd, Vec<u8>)>;

impl AppActor {
    pub(super) fn log_files(&self, id: u32) -> LogFiles {
        log_files(&self.spec, &self.shared.paths, id)
    }

    /// What a cluster worker of slot `key` needs its channel answered with.
    pub(super) fn primary(&self, key: u64, ctx: &Context<Self>) -> cluster::Primary {
        cluster::Primary {
            key,
            addr: ctx.address(),
            ports: self.cluster_ports.clone(),
            hub: self.shared.listen.clone(),
            inherited: (self.listeners.iter().enumerate())
                .map(|(n, (_, fd))| (activation::FIRST_FD + n as i32, fd.clone()))
                .collect(),
        }
    }

    /// Where instance `id` writes its pid while it runs: its `pid_file`, else PM2's place.
    pub(super) fn pid_path(&self, id: u32) -> std::path::PathBuf {
        (self.spec.options.pid_file_of(id))
            .unwrap_or_else(|| self.shared.paths.instance_pid_file(&self.spec.name, id))
    }

    /// Hands a spawned process's output pipes to the log thread, each with the start of a
    /// line already read (by the daemon before a `pmx update`); `conf`: `pmx set`'s
    /// pm2-logrotate values, under the app's own rotation settings.
    pub(super) fn capture(
        &self,
        id: u32,
        files: LogFiles,
        out: Pipe,
        err: Pipe,
        conf: &RotateOptions,
    ) {
        let o = &self.spec.options;
        let rotate = o.log_rotate.over(conf);
        let prefix = (o.time || o.log_date_format.is_some())
            .then(|| strftime_of(o.log_date_format.as_deref().unwrap_or(DEFAULT_DATE_FORMAT)));
        for (stream, pipe) in [(Stream::Out, out), (Stream::Err, err)] {
            let Some((pipe, partial)) = pipe else {
                continue;
            };
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
                partial,
            });
        }
    }

    pub(super) fn spawn(&mut self, i: usize, ctx: &mut Context<Self>) {
        if let Some(adoptee) = self.take_adoptee(self.slots[i].id) {
            return self.adopt(i, adoptee, ctx);
        }
        if self.resume_wait(i, ctx) {
            return;
        }
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
            let primary = cluster_worker.then(|| self.primary(key, ctx));
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
        let prepared = spawn::prepare(&request);
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(error) => return self.spawn_failed(i, error, ctx),
        };
        let run = self.runs;
        self.slots[i].launch = Some(Launch {
            run,
            token,
            talk,
            files,
            rotation: conf.rotation(),
            conf_env: Arc::new(conf_env),
            injected,
        });
        let keep = self.listeners.iter().map(|(_, fd)| fd.clone()).collect();
        let addr = ctx.address();
        self.shared.spawner.spawn(prepared, keep, move |result| {
            addr.do_send(Launched { key, run, result });
        });
    }

    /// The process of a launch is spawned (or failed to be): it becomes the slot's run.
    fn launched(&mut self, i: usize, launch: Launch, fresh: Fresh, ctx: &mut Context<Self>) {
        let Launch {
            token,
            talk,
            files,
            rotation,
            conf_env,
            mut injected,
            ..
        } = launch;
        let start_time = fresh.start_time;
        let Some(spawned) = fresh.take() else {
            // A `Fresh` always holds its process until taken: never left launching.
            let error = "the spawned process was lost".to_string();
            return self.spawn_failed(i, error.into(), ctx);
        };
        let (key, id, pid) = (self.slots[i].key, self.slots[i].id, spawned.pid);
        // The child has its copy of the channel's end now; the daemon keeps its own side.
        let talk = talk.map(talk::Opened::into_talk);
        let fresh = |pipe: Option<OwnedFd>| pipe.map(|p| (p, Vec::new()));
        let (out, err) = (fresh(spawned.out), fresh(spawned.err));
        self.watch_process(id, pid, (files, out, err), &rotation, ctx);
        let kind = EventKind::Spawned {
            pid,
            start_time,
            boot: self.shared.boot.as_deref().map(String::from),
            token: Some(token.clone()),
        };
        self.journal(Some(id), kind, Cause::Process);
        let path = self.pid_path(id);
        let pid_line = format!("{pid}\n");
        if let Err(e) = pmx_core::private::replace_volatile(&path, pid_line.as_bytes()) {
            crate::say!(
                "pmx: {}: cannot write {}: {e}",
                self.spec.name,
                path.display()
            );
        }
        if injected.contains_key("LISTEN_FDS") {
            injected.insert("LISTEN_PID".into(), pid.to_string());
        }
        self.slots[i].run = Some(Run {
            pid,
            pidfd: spawned.pidfd.clone(),
            token,
            talk,
            held_signal: None,
            agent: None,
            conf_env,
            injected: Arc::new(injected),
        });
        self.await_exit(key, pid, spawned.pidfd, ctx);
        self.feed(i, Input::Spawned { pid }, Cause::Process, ctx);
    }

    /// What every process of the app gets, spawned or adopted: its output captured (each
    /// pipe with the start of a line already read), its pid managed (the reaper leaves it to
    /// its actor) and sampled.
    pub(super) fn watch_process(
        &self,
        id: u32,
        pid: u32,
        (files, out, err): (LogFiles, Pipe, Pipe),
        conf: &RotateOptions,
        ctx: &mut Context<Self>,
    ) {
        self.capture(id, files, out, err, conf);
        self.shared.managed.insert(pid);
        self.shared.sampler.watch(
            id,
            pid,
            self.spec.options.memory_policy(),
            ctx.address().recipient(),
        );
    }

    /// Feeds the exit of process `pid` (a child) to slot `key` when it comes.
    pub(super) fn await_exit(
        &self,
        key: u64,
        pid: u32,
        pidfd: Option<Arc<OwnedFd>>,
        ctx: &mut Context<Self>,
    ) {
        let wait = spawn::exit_of(pid, pidfd);
        ctx.spawn(wait.into_actor(self).map(move |exit, act, ctx| {
            if let Some(i) = act.find(key) {
                act.exited(i, pid, exit, ctx);
            }
        }));
    }

    pub(super) fn spawn_failed(
        &mut self,
        i: usize,
        error: spawn::SpawnError,
        ctx: &mut Context<Self>,
    ) {
        let input = Input::SpawnFailed {
            error: error.message,
            transient: error.transient,
        };
        self.feed(i, input, Cause::Process, ctx);
    }

    /// Binds (or takes from another actor of the same app) the sockets the spec lists: all
    /// of them or none, so a failed bind is tried again at the next spawn.
    pub(super) fn bind_listeners(&mut self) -> Result<(), String> {
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
    pub(super) fn instance_env(&self, index: u32) -> Vec<(String, String)> {
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
}

/// What a launch keeps until its process is spawned: the run it becomes.
pub(super) struct Launch {
    /// The actor's spawn count when asked: a result for another launch is stale.
    run: u64,
    token: String,
    talk: Option<talk::Opened>,
    files: LogFiles,
    rotation: RotateOptions,
    conf_env: Arc<BTreeMap<String, String>>,
    injected: BTreeMap<String, String>,
}

/// A spawn asked for by slot `key`'s launch number `run` has its answer.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct Launched {
    key: u64,
    run: u64,
    result: Result<Fresh, spawn::SpawnError>,
}

impl Handler<Launched> for AppActor {
    type Result = ();

    /// A result nobody waits for any more (the actor handed its processes over) is dropped,
    /// which kills its process.
    fn handle(&mut self, msg: Launched, ctx: &mut Context<Self>) {
        let Some(i) = self.find(msg.key) else { return };
        let launch = self.slots[i].launch.take_if(|l| l.run == msg.run);
        let Some(launch) = launch.filter(|_| !self.frozen) else {
            return;
        };
        match msg.result {
            Ok(fresh) => self.launched(i, launch, fresh, ctx),
            Err(error) => self.spawn_failed(i, error, ctx),
        }
    }
}
