//! `save` and `resurrect` (PM2's habit): a checkpoint of every app's spec in the journal, and
//! bringing the last checkpoint back — saved apps that were deleted are registered again,
//! saved apps that are not running are started.

use pmx_core::event::{Cause, EventKind, NewEvent};
use pmx_core::protocol::{FailureKind, Response};
use pmx_core::state::Command;
use pmx_storage::load_registry;

use super::{Daemon, Reply, internal, ready};

impl Daemon {
    pub(super) fn save(&mut self, cause: Cause) -> Reply {
        let apps = self.apps.values().map(|entry| entry.spec.clone()).collect();
        let saved = NewEvent {
            app: String::new(),
            instance: None,
            kind: EventKind::Saved { apps },
            cause,
        };
        if let Err(e) = self.record(vec![saved]) {
            return ready(internal(e));
        }
        self.list(None)
    }

    pub(super) fn resurrect(&mut self, cause: Cause) -> Reply {
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
        if names.is_empty() {
            return self.list(None);
        }
        self.control(&names, Command::Start, cause)
    }
}
