//! `list`, `jlist`, `describe`, `history`, `ping`: read-only answers.

use std::collections::VecDeque;

use actix::prelude::*;
use pmx_core::event::Event;
use pmx_core::protocol::{
    AppEnv, EnvList, FailureKind, HistoryList, HistoryRequest, Pong, ProcessList, Response,
};
use pmx_core::view::pm2_json;
use pmx_storage::JournalError;

use super::{Daemon, Reply, internal, ready};
use crate::app::Views;
use crate::clock::now_ms;

/// Events per history frame (about 1 MiB): a long history never sits whole in memory.
const HISTORY_PAGE: usize = 5_000;

/// Values only through `pmx env`, to the daemon's user.
fn redacted(mut events: Vec<Event>) -> Vec<Event> {
    events.iter_mut().for_each(|e| e.kind.redact_env());
    events
}

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
                    notes: Vec::new(),
                })
            }
            .into_actor(self),
        )
    }

    /// PM2's `jlist` array of every instance, rendered here: the client prints it as it is.
    pub(super) fn jlist(&mut self) -> Reply {
        let picks = self.apps.keys().map(|n| (n.clone(), None)).collect();
        let views = self.gather(&picks, &|ids| Views { ids });
        Box::pin(
            async move {
                let views = views.await;
                let now = now_ms();
                // About 1,100 bytes an instance: one allocation for most documents.
                let mut document = Vec::with_capacity(1280 * (views.len() + 1));
                let entries = views.iter().map(|v| pm2_json(v, now));
                let mut writer = serde_json::Serializer::new(&mut document);
                match serde::Serializer::collect_seq(&mut writer, entries) {
                    Ok(()) => Response::Document(document),
                    Err(e) => internal(format!("cannot render jlist: {e}")),
                }
            }
            .into_actor(self),
        )
    }

    /// Reads the journal on a history reader (see `readers`), never on the actor's thread.
    pub(super) fn history(&self, req: HistoryRequest) -> Reply {
        let journal = self.shared.journal.clone();
        let registered = req.target == "all" || self.apps.contains_key(&req.target);
        let read = move || {
            let known = registered
                || matches!(journal.page_after(Some(&req.target), 0, 1), Ok(e) if !e.is_empty());
            if !known {
                return Response::failure(
                    FailureKind::NotFound,
                    format!("no history for app `{}`", req.target),
                );
            }
            match history_page(journal.as_ref(), &req) {
                Ok(list) => Response::History(list),
                Err(e) => internal(e),
            }
        };
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: super::readers::Job = Box::new(move || {
            let _ = answer.send(read());
        });
        if super::readers::queue().is_none_or(|q| q.send(job).is_err()) {
            return ready(internal("cannot start the history readers"));
        }
        Box::pin(
            async move {
                answered
                    .await
                    .unwrap_or_else(|_| internal("the history read failed"))
            }
            .into_actor(self),
        )
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
            http: self.shared.http.as_deref().map(String::from),
        })
    }
}

/// One page of the matching events, oldest first, with where the next page starts.
fn history_page(
    journal: &dyn pmx_storage::Journal,
    req: &HistoryRequest,
) -> Result<HistoryList, JournalError> {
    let app = (req.target != "all").then_some(req.target.as_str());
    // Read before the events: a follower resumes after it, missing nothing.
    let head = journal.head();
    let cut = journal.cut(app)?;
    let filtered = req.since.is_some() || req.until.is_some() || req.instance.is_some();
    let mut events = match (req.after_seq, req.limit) {
        // The last N matching events: keep a window of N while reading every page.
        (None, Some(0)) => Vec::new(),
        (None, Some(limit)) if filtered => {
            let mut window = VecDeque::with_capacity(limit.min(HISTORY_PAGE));
            let mut after = 0;
            loop {
                let page = journal.page_after(app, after, HISTORY_PAGE)?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for event in page.into_iter().filter(|e| req.admits(e)) {
                    if window.len() == limit {
                        window.pop_front();
                    }
                    window.push_back(event);
                }
            }
            return Ok(HistoryList {
                events: redacted(window.into()),
                head,
                cut,
                next_after: None,
            });
        }
        // The last N: found by reading keys only, then read forward from there.
        (None, Some(limit)) => {
            let from = journal.seq_before_last(app, limit)?;
            journal.page_after(app, from, limit.min(HISTORY_PAGE))?
        }
        (after, _) => journal.page_after(app, after.unwrap_or(0), HISTORY_PAGE)?,
    };
    let full = events.len() == HISTORY_PAGE;
    let next_after = events.last().map(|e| e.seq).filter(|_| full);
    events.retain(|e| req.admits(e));
    Ok(HistoryList {
        events: redacted(events),
        head,
        cut,
        next_after,
    })
}
