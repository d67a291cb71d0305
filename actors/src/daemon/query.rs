//! `list`, `describe`, `history`, `ping`: read-only answers.

use actix::prelude::*;
use pmx_core::protocol::{FailureKind, HistoryList, HistoryRequest, Pong, ProcessList, Response};

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
        let pending: Vec<_> = picks
            .iter()
            .filter_map(|(name, ids)| {
                Some(self.apps.get(name)?.addr.send(Views { ids: ids.clone() }))
            })
            .collect();
        Box::pin(
            async move {
                let mut processes = Vec::new();
                for p in pending {
                    processes.extend(p.await.unwrap_or_default());
                }
                processes.sort_by_key(|v| v.id);
                Response::Processes(ProcessList { processes })
            }
            .into_actor(self),
        )
    }

    pub(super) fn history(&self, req: HistoryRequest) -> Response {
        let journal = &self.shared.journal;
        let events = if req.target == "all" {
            journal.all().map(|mut all| {
                if let Some(limit) = req.limit {
                    all.drain(..all.len().saturating_sub(limit));
                }
                all
            })
        } else {
            journal.for_app(&req.target, req.limit)
        };
        match events {
            Ok(events)
                if events.is_empty()
                    && req.target != "all"
                    && !self.apps.contains_key(&req.target) =>
            {
                Response::failure(
                    FailureKind::NotFound,
                    format!("no history for app `{}`", req.target),
                )
            }
            Ok(events) => Response::History(HistoryList { events }),
            Err(e) => internal(e),
        }
    }

    pub(super) fn pong(&self) -> Response {
        Response::Pong(Pong {
            daemon_pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: self.started_at,
        })
    }
}
