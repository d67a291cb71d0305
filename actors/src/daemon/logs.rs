//! `logs`, `flush`, `reloadLogs`: which files belong to which instances. The log thread does
//! the file work; `pmx logs` reads the files itself, and a follower's new lines are streamed
//! by the server.

use std::path::PathBuf;

use actix::prelude::*;
use pmx_core::logs::{LogFiles, Stream, log_files};
use pmx_core::protocol::{FailureKind, LogSource, LogSources, Response};

use super::{Daemon, Reply, ready};

/// The files of one instance.
struct InstanceFiles {
    app: String,
    id: u32,
    files: LogFiles,
}

impl Daemon {
    /// Every targeted instance with its files (`all`, or no target, with no app: none).
    fn instance_files(&self, targets: &[String]) -> Result<Vec<InstanceFiles>, Response> {
        let picks = if targets.iter().all(|t| t == "all") {
            self.apps.keys().map(|n| (n.clone(), None)).collect()
        } else {
            self.resolve_targets(targets)?
        };
        let mut found = Vec::new();
        for (name, ids) in picks {
            let Some(entry) = self.apps.get(&name) else {
                continue;
            };
            for &id in &entry.ids {
                if ids.as_ref().is_none_or(|wanted| wanted.contains(&id)) {
                    found.push(InstanceFiles {
                        app: name.clone(),
                        id,
                        files: log_files(&entry.spec, &self.shared.paths, id),
                    });
                }
            }
        }
        Ok(found)
    }

    pub(super) fn logs(&self, targets: &[String]) -> Response {
        match self.instance_files(targets) {
            Ok(instances) => Response::LogSources(LogSources {
                sources: sources_of(&instances),
            }),
            Err(r) => r,
        }
    }

    /// Empties the targets' files, the combined ones too.
    pub(super) fn flush_logs(&self, targets: &[String]) -> Reply {
        let instances = match self.instance_files(targets) {
            Ok(i) => i,
            Err(r) => return ready(r),
        };
        let sources = sources_of(&instances);
        let mut paths: Vec<PathBuf> = instances
            .into_iter()
            .flat_map(|i| [i.files.out, i.files.err, i.files.combined])
            .flatten()
            .collect();
        paths.sort();
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
        let all = self
            .instance_files(&[])
            .map(|i| sources_of(&i))
            .unwrap_or_default();
        Box::pin(
            async move {
                hub.reopen().await;
                Response::LogSources(LogSources { sources: all })
            }
            .into_actor(self),
        )
    }
}

/// The out and err files of instances, by id, a merged file once.
fn sources_of(instances: &[InstanceFiles]) -> Vec<LogSource> {
    let mut sources: Vec<LogSource> = instances
        .iter()
        .flat_map(|i| {
            [Stream::Out, Stream::Err]
                .into_iter()
                .filter_map(move |stream| {
                    Some(LogSource {
                        app: i.app.clone(),
                        id: i.id,
                        stream,
                        path: i.files.of(stream)?.to_string_lossy().into_owned(),
                    })
                })
        })
        .collect();
    sources.sort_by_key(|s| (s.id, s.stream == Stream::Err));
    // Merged logs: instances share a file, shown once (at its lowest id).
    let mut seen = std::collections::HashSet::new();
    sources.retain(|s| seen.insert(s.path.clone()));
    sources
}
