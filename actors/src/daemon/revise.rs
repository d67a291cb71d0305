//! `restart --update-env` (or with options) and `rollback`: both give an app another spec, so
//! both go through `up` and become a config revision in the journal, with the change they
//! made.

use std::sync::Arc;

use pmx_core::event::{Cause, EventKind};
use pmx_core::protocol::{
    FailureKind, Response, ReviseRequest, RollbackRequest, Unchanged, UpRequest, WatchChange,
};
use pmx_core::spec::AppSpec;

use super::{Daemon, Reply, internal, ready};

/// One spec an app had, and the config revision that gave it (none: `start`, `resurrect`).
struct Version {
    revision: Option<u64>,
    spec: AppSpec,
}

impl Daemon {
    /// Restarts the targeted apps with `env` as their captured environment from now on (when
    /// given) and the options changed.
    pub(super) fn revise(&mut self, req: ReviseRequest, cause: Cause) -> Reply {
        let picks = match self.resolve_targets(&req.targets) {
            Ok(p) => p,
            Err(r) => return ready(r),
        };
        let mut source = match (&req.env, req.options.is_empty()) {
            (Some(_), true) => "restart --update-env",
            (Some(_), false) => "restart --update-env with options",
            (None, _) => "restart with options",
        }
        .to_string();
        let update_env = req.env.is_some();
        let mut renamed = Vec::new();
        if let Some(new) = &req.options.name {
            let [(old, _)] = picks.as_slice() else {
                return ready(Response::failure(
                    FailureKind::Invalid,
                    format!("--name {new}: give one app to rename, not {}", picks.len()),
                ));
            };
            if old != new {
                if self.apps.contains_key(new) {
                    return ready(Response::failure(
                        FailureKind::Conflict,
                        format!("cannot rename `{old}` to `{new}`: an app has that name"),
                    ));
                }
                source = format!("rename of {old} to {new}");
                renamed.push((old.clone(), new.clone()));
            }
        }
        let env = req.env.map(Arc::new);
        let apps = picks
            .iter()
            .filter_map(|(name, _)| self.apps.get(name))
            .map(|entry| {
                let mut spec = (*entry.spec).clone();
                if let Some(env) = &env {
                    spec.base_env = env.clone();
                }
                req.options.apply(&mut spec);
                if let Some(new) = &req.options.name {
                    spec.name = new.clone();
                }
                if let Some(change) = req.options.watch {
                    let watching = !spec.options.watch.is_empty() && !entry.watch_paused;
                    if watching && change == WatchChange::Toggle {
                        spec.options.watch.clear();
                    } else if spec.options.watch.is_empty() {
                        spec.options.watch = vec![spec.cwd.clone()];
                    } // else: paused, resumed by `up` below as the spec is the same
                }
                spec
            })
            .collect();
        let up = UpRequest {
            rules: None,
            apps,
            prune: false,
            dry_run: false,
            source,
            hash: String::new(),
            unchanged: Unchanged::Restart,
            update_env,
            renamed,
        };
        self.up(up, cause)
    }

    /// Re-applies the spec an app had at an earlier config revision (by default, the last
    /// spec that differs from the current one).
    pub(super) fn rollback(&mut self, req: RollbackRequest, cause: Cause) -> Reply {
        let versions = match self.versions(&req.app) {
            Ok(v) => v,
            Err(e) => return ready(internal(e)),
        };
        let current = self.apps.get(&req.app).map(|e| &e.spec);
        let picked = match req.to {
            Some(rev) => versions
                .iter()
                .rev()
                .find(|v| v.revision.is_some_and(|r| r <= rev)),
            None => versions
                .iter()
                .rev()
                .find(|v| current.is_none_or(|c| !c.differences(&v.spec).is_empty())),
        };
        let Some(version) = picked else {
            let known: Vec<String> = versions
                .iter()
                .filter_map(|v| v.revision.map(|r| r.to_string()))
                .collect();
            let why = match req.to {
                _ if versions.is_empty() => format!("no spec of `{}` is in the journal", req.app),
                Some(rev) => format!(
                    "`{}` has no spec from config revision {rev} or earlier (its revisions: {})",
                    req.app,
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ),
                None => format!("`{}` has had no other spec to go back to", req.app),
            };
            return ready(Response::failure(FailureKind::NotFound, why));
        };
        let source = match version.revision {
            Some(r) => format!("rollback of {} to its spec of revision {r}", req.app),
            None => format!("rollback of {} to its previous spec", req.app),
        };
        let up = UpRequest {
            rules: None,
            apps: vec![version.spec.clone()],
            prune: false,
            dry_run: req.dry_run,
            source,
            hash: String::new(),
            unchanged: Unchanged::Keep,
            update_env: true,
            renamed: Vec::new(),
        };
        self.up(up, cause)
    }

    /// Every spec the journal still holds for an app, oldest first.
    fn versions(&self, app: &str) -> Result<Vec<Version>, pmx_storage::JournalError> {
        let mut versions = Vec::new();
        let mut revision = None;
        for event in self.shared.journal.for_app(app, None)? {
            match event.kind {
                EventKind::ConfigChanged { revision: r, .. } => revision = Some(r),
                EventKind::AppDeleted { .. } => revision = None,
                EventKind::AppCreated { spec, .. } => versions.push(Version {
                    revision: revision.take(),
                    spec: *spec,
                }),
                _ => {}
            }
        }
        Ok(versions)
    }
}
