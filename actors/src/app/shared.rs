//! `Shared`: what every app actor shares with the daemon (the home, the journal, the log
//! thread, the spawner, the sampler, the rules, the desk decisions go to), and how it is made.

use std::sync::Arc;

use pmx_core::paths::Paths;
use pmx_storage::Journal;
use tokio::sync::Notify;

use crate::clock::now_ms;
use crate::process::reaper::Managed;

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
    /// The thread every process is spawned on.
    pub spawner: crate::process::spawner::Spawner,
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
    /// The daemon's settings as `pmxd --settings` takes them: what `pmx update` executes
    /// the new program with (`None`: the daemon cannot re-execute itself).
    pub relaunch: Option<Arc<str>>,
    /// An update gathered, for `run` to execute once the client has its answer.
    pub pending_update: crate::update::Pending,
    /// Where the app's own decisions (memory, cron, watch, health) go: the daemon.
    pub desk: crate::decision::Desk,
}

impl Shared {
    /// What app actors share on `paths`, writing to `journal`, with the log thread, the
    /// spawner, the sampler and the rules' handle already started; no HTTP, no relaunch, no
    /// listeners held, the desk closed until the daemon opens it. `run` and the daemon's tests
    /// build it so.
    pub fn new(
        paths: &Paths,
        journal: Arc<dyn Journal>,
        commit: Arc<Notify>,
        managed: Managed,
        (logs, spawner, sampler, policy): (
            crate::logs::LogHub,
            crate::process::spawner::Spawner,
            crate::sampler::Sampler,
            crate::policy::PolicyHandle,
        ),
    ) -> Self {
        Shared {
            paths: Arc::new(paths.clone()),
            journal,
            managed,
            user: crate::user_name().into(),
            commit,
            token_prefix: format!(
                "{}#{}.{}",
                paths.home().display(),
                std::process::id(),
                now_ms()
            )
            .into(),
            boot: crate::process::identity::boot_id().map(Arc::from),
            logs,
            spawner,
            sampler,
            watch: Default::default(),
            listen: Default::default(),
            policy,
            http: None,
            relaunch: None,
            pending_update: Default::default(),
            desk: Default::default(),
        }
    }
}
