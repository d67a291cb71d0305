//! `list`, `describe`, `history`, `ping`: read-only answers.

use actix::prelude::*;
use pmx_core::protocol::{
    AppEnv, EnvList, FailureKind, HistoryList, HistoryRequest, Pong, ProcessList, Response,
};

use super::{Daemon, Reply, internal, ready};
use crate::app::Views;

impl Daemon {
    /// Every instance (`targets` = None) or the picked ones, sorted by id.
    pub(super) fn list(&mut self, targets: Option<&[String]>) -> Reply {
        let picks = match targets {
            None => self.apps.keys().map(|n| (n.clone(), None)).collect(),
            Some(t) => match self.resolve_targets(t) {
                Ok(p) => p,
                Err(r) => return ready(r),
            },
        };
        let views = self.gather(&picks, &|ids| Views { ids });
        Box::pin(
            async move {
                Response::Processes(ProcessList {
                    processes: views.await,
                })
            }
            .into_actor(self),
        )
    }

    pub(super) fn history(&self, req: HistoryRequest) -> Response {
        let journal = &self.shared.journal;
        // Read before the events: a follower resumes after it, missing nothing.
        let head = journal.head();
        let all = req.target == "all";
        let unfiltered = req.since.is_none() && req.until.is_none() && req.instance.is_none();
        let events = match (all, req.after_seq) {
            // The common case reads only the last `limit` keys of the app's index.
            (false, None) if unfiltered => journal.for_app(&req.target, req.limit),
            (false, after) => journal.for_app_after(&req.target, after.unwrap_or(0)),
            (true, after) => journal.all_after(after.unwrap_or(0)),
        };
        let mut events = match events {
            Ok(events) => events,
            Err(e) => return internal(e),
        };
        if events.is_empty()
            && !all
            && req.after_seq.is_none()
            && !self.apps.contains_key(&req.target)
        {
            return Response::failure(
                FailureKind::NotFound,
                format!("no history for app `{}`", req.target),
            );
        }
        events.retain(|e| req.admits(e));
        if let Some(limit) = req.limit {
            events.drain(..events.len().saturating_sub(limit));
        }
        // Values only through `pmx env`, to the daemon's user.
        events.iter_mut().for_each(|e| e.kind.redact_env());
        let cut = match journal.cut((!all).then_some(req.target.as_str())) {
            Ok(cut) => cut,
            Err(e) => return internal(e),
        };
        Response::History(HistoryList { events, head, cut })
    }

    /// `pmx env`: values, so only for the user the daemon runs as.
    pub(super) fn env(&self, targets: &[String], uid: u32) -> Response {
        if uid != rustix::process::getuid().as_raw() {
            return Response::failure(
                FailureKind::Denied,
                "only the user the daemon runs as may read apps' environments",
            );
        }
        let picks = match self.resolve_targets(targets) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let apps = picks
            .into_iter()
            .filter_map(|(name, _)| {
                let entry = self.apps.get(&name)?;
                Some(AppEnv {
                    env: entry.spec.run_env(),
                    ids: entry.ids.clone(),
                    name,
                })
            })
            .collect();
        Response::Env(EnvList { apps })
    }

    pub(super) fn pong(&self) -> Response {
        Response::Pong(Pong {
            daemon_pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: self.started_at,
        })
    }
}
