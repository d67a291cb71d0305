//! `save` and `resurrect` (PM2's habit): a checkpoint of every app's spec in the journal, and
//! bringing the last checkpoint back — saved apps that were deleted are registered again,
//! saved apps that are not running are started. `save` also writes PM2's `dump.pm2` (the
//! previous one kept as `dump.pm2.bak`); the journal stays the truth.

use actix::prelude::*;
use pmx_core::event::{Cause, EventKind, NewEvent};
use pmx_core::paths::Paths;
use pmx_core::protocol::{FailureKind, ProcessList, Response};
use pmx_core::state::Command;
use pmx_core::view::{ProcessView, pm2_json};
use pmx_storage::load_registry;

use super::{Daemon, Reply, internal, ready};
use crate::app::Views;
use crate::clock::now_ms;

impl Daemon {
    pub(super) fn save(&mut self, cause: Cause) -> Reply {
        let apps = self
            .apps
            .values()
            .map(|entry| (*entry.spec).clone())
            .collect();
        let saved = NewEvent {
            app: String::new(),
            instance: None,
            kind: EventKind::Saved { apps },
            cause,
        };
        if let Err(e) = self.record(vec![saved]) {
            return ready(internal(e));
        }
        let picks = self.apps.keys().map(|n| (n.clone(), None)).collect();
        let views = self.gather(&picks, &|ids| Views { ids });
        let paths = self.shared.paths.clone();
        Box::pin(
            async move {
                let processes = views.await;
                let notes = match write_dump(&paths, &processes) {
                    Ok(()) => Vec::new(),
                    // The save is in the journal: the dump is only its copy for PM2's tools.
                    Err(e) => vec![format!("cannot write {}: {e}", paths.dump_file().display())],
                };
                Response::Processes(ProcessList { processes, notes })
            }
            .into_actor(self),
        )
    }

    pub(super) fn resurrect(&mut self, cause: Cause) -> Reply {
        let set_aside = set_aside_broken_dump(&self.shared.paths);
        let saved = match load_registry(self.shared.journal.as_ref()) {
            Ok((snapshot, _)) => snapshot.registry.saved,
            Err(e) => return ready(internal(e)),
        };
        let Some(saved) = saved else {
            return ready(Response::failure(
                FailureKind::NotFound,
                "nothing saved yet: run `pmx save` first",
            ));
        };
        let mut names = Vec::with_capacity(saved.len());
        for spec in saved {
            let name = spec.name.clone();
            if !self.apps.contains_key(&name)
                && let Err(refused) = self.register(spec, &cause)
            {
                // One app that cannot come back (its script is gone) does not keep the others down.
                crate::say!("pmx: resurrect {name}: {refused:?}");
                continue;
            }
            names.push(name);
        }
        let started = if names.is_empty() {
            self.list(None)
        } else {
            self.control(&names, Command::Start, cause)
        };
        Box::pin(started.map(move |mut response, _, _| {
            if let (Response::Processes(list), Some(note)) = (&mut response, set_aside) {
                list.notes.push(note);
            }
            response
        }))
    }
}

/// Writes PM2's `dump.pm2` of `processes`, the previous one moved to `dump.pm2.bak`.
fn write_dump(paths: &Paths, processes: &[ProcessView]) -> std::io::Result<()> {
    let now = now_ms();
    let entries: Vec<_> = processes
        .iter()
        .map(|p| pm2_json(p, now).into_env())
        .collect();
    let document = serde_json::to_vec_pretty(&entries).map_err(std::io::Error::other)?;
    // A rename moves a link itself, never what it points to.
    match std::fs::rename(paths.dump_file(), paths.dump_backup()) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    pmx_core::private::replace(&paths.dump_file(), &document)
}

/// A `dump.pm2` that is not valid JSON is moved aside, as PM2 does; what was done, in words.
fn set_aside_broken_dump(paths: &Paths) -> Option<String> {
    let dump = paths.dump_file();
    let mut text = Vec::new();
    let mut file = pmx_core::private::options().read(true).open(&dump).ok()?;
    std::io::Read::read_to_end(&mut file, &mut text).ok()?;
    if serde_json::from_slice::<serde_json::Value>(&text).is_ok() {
        return None;
    }
    let aside = paths.dump_broken();
    let said = match std::fs::rename(&dump, &aside) {
        Ok(()) => format!(
            "{} is not valid JSON: moved to {}",
            dump.display(),
            aside.display()
        ),
        Err(e) => format!(
            "{} is not valid JSON, and cannot be moved: {e}",
            dump.display()
        ),
    };
    crate::say!("pmx: resurrect: {said}");
    Some(said)
}
