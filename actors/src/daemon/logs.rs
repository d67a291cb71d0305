//! `logs`, `flush`, `reloadLogs`: which files belong to which instances. The log thread does
//! the file work; `pmx logs` reads the files itself, and a follower's new lines are streamed
//! by the server.

use std::path::PathBuf;

use actix::prelude::*;
use pmx_core::logs::{Stream, log_files};
use pmx_core::protocol::{FailureKind, LogSource, LogSources, Response};

use super::{Daemon, Reply, ready};

impl Daemon {
    /// The out and err files of every targeted instance (`all` with no app: none).
    pub(super) fn log_sources(&self, targets: &[String]) -> Result<Vec<LogSource>, Response> {
        let picks = if targets.iter().all(|t| t == "all") {
            self.apps.keys().map(|n| (n.clone(), None)).collect()
        } else {
            self.resolve_targets(targets)?
        };
        let mut sources = Vec::new();
        for (name, ids) in picks {
            let Some(entry) = self.apps.get(&name) else {
                continue;
            };
            for &id in entry
                .ids
                .iter()
                .filter(|id| ids.as_ref().is_none_or(|w| w.contains(id)))
            {
                let files = log_files(&entry.spec, &self.shared.paths, id);
                for stream in [Stream::Out, Stream::Err] {
                    if let Some(path) = files.of(stream) {
                        sources.push(LogSource {
                            app: name.clone(),
                            id,
                            stream,
                            path: path.to_string_lossy().into_owned(),
                        });
                    }
                }
            }
        }
        sources.sort_by_key(|s| (s.id, s.stream == Stream::Err));
        sources.dedup_by(|a, b| a.path == b.path);
        Ok(sources)
    }

    pub(super) fn logs(&self, targets: &[String]) -> Response {
        match self.log_sources(targets) {
            Ok(sources) => Response::LogSources(LogSources { sources }),
            Err(r) => r,
        }
    }

    /// Empties the targets' files (the combined one too).
    pub(super) fn flush_logs(&self, targets: &[String]) -> Reply {
        let sources = match self.log_sources(targets) {
            Ok(s) => s,
            Err(r) => return ready(r),
        };
        let mut paths: Vec<PathBuf> = sources.iter().map(|s| PathBuf::from(&s.path)).collect();
        for entry in self.apps.values() {
            for &id in &entry.ids {
                let files = log_files(&entry.spec, &self.shared.paths, id);
                if let Some(combined) = files.combined
                    && sources
                        .iter()
                        .any(|s| s.app == entry.spec.name && s.id == id)
                {
                    paths.push(combined);
                }
            }
        }
        paths.dedup();
        let hub = self.shared.logs.clone();
        Box::pin(
            async move {
                let errors = hub.flush(paths).await;
                if errors.is_empty() {
                    Response::LogSources(LogSources { sources })
                } else {
                    Response::failure(FailureKind::Internal, errors.join("; "))
                }
            }
            .into_actor(self),
        )
    }

    pub(super) fn reload_logs(&self) -> Reply {
        let hub = self.shared.logs.clone();
        let all = self.log_sources(&[]).unwrap_or_default();
        Box::pin(
            async move {
                hub.reopen().await;
                Response::LogSources(LogSources { sources: all })
            }
            .into_actor(self),
        )
    }
}
