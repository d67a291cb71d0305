//! The environments apps were started with, stored once each. Like PM2, an app's spec carries
//! the whole environment of the CLI that started it (2–3 KB); the 500 apps of one ecosystem
//! file carry the same one. The journal keeps each distinct environment once, in the `envs`
//! tree under its fingerprint, and an `AppCreated` or `Saved` record names it in `env_refs`
//! (one entry per spec, in order) with the spec's `base_env` left empty. Records without
//! `env_refs` (written before, or whose environment is empty) carry their environment inline.
//!
//! The `env_users` tree (`fingerprint ++ seq`) says which records refer to each environment,
//! so retention can drop an environment with the last record that used it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use pmx_core::event::{Event, EventKind};
use pmx_core::fingerprint::fingerprint;
use pmx_core::spec::AppSpec;
use serde::{Deserialize, Serialize};

use crate::journal::JournalError;

type Env = Arc<BTreeMap<String, String>>;

/// How many environments are kept decoded in memory: a daemon's apps come from a handful of
/// shells, and every spec started from one shares its `Arc`.
const KNOWN_MAX: usize = 16;

pub(crate) struct EnvStore {
    envs: sled::Tree,
    users: sled::Tree,
    /// Recently stored or read environments with their fingerprints, newest last.
    known: Mutex<Vec<(String, Env)>>,
}

/// A record as the journal writes it: the event, and where its specs' environments went.
#[derive(Serialize)]
struct Stored<'a> {
    #[serde(flatten)]
    event: &'a Event,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    env_refs: Vec<Option<String>>,
}

/// The part of a record that names its environments, read only where a spec's is missing.
#[derive(Deserialize)]
struct Refs {
    #[serde(default)]
    env_refs: Vec<Option<String>>,
}

fn specs_mut(event: &mut Event) -> Vec<&mut AppSpec> {
    match &mut event.kind {
        EventKind::AppCreated { spec, .. } => vec![&mut **spec],
        EventKind::Saved { apps } => apps.iter_mut().collect(),
        _ => Vec::new(),
    }
}

fn user_key(name: &str, seq: u64) -> Vec<u8> {
    let mut key = name.as_bytes().to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn write_err(e: impl std::fmt::Display) -> JournalError {
    JournalError::Write(e.to_string())
}

impl EnvStore {
    pub(crate) fn open(db: &sled::Db) -> sled::Result<Self> {
        Ok(Self {
            envs: db.open_tree("envs")?,
            users: db.open_tree("env_users")?,
            known: Mutex::new(Vec::new()),
        })
    }

    /// The record's bytes, its specs' environments stored apart. The event is left whole.
    pub(crate) fn encode(&self, event: &mut Event) -> Result<Vec<u8>, JournalError> {
        let seq = event.seq;
        let mut refs = Vec::new();
        {
            // Held until the uses are recorded: retention (another thread) decides under the
            // same lock whether an environment is still used, so it never removes one a record
            // being written names.
            let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            for spec in specs_mut(event) {
                refs.push(match spec.base_env.is_empty() {
                    true => None,
                    false => self.stash(&mut known, &spec.base_env)?,
                });
            }
            // One use per record and environment: a `save` of 500 apps from one shell is one.
            let used: BTreeSet<&String> = refs.iter().flatten().collect();
            for name in used {
                self.users.insert(user_key(name, seq), &[])?;
            }
        }
        if refs.iter().all(Option::is_none) {
            return serde_json::to_vec(&*event).map_err(write_err);
        }
        let mut taken = Vec::new();
        for (spec, name) in specs_mut(event).into_iter().zip(&refs) {
            taken.push(match name {
                Some(_) => std::mem::take(&mut spec.base_env),
                None => Env::default(),
            });
        }
        let bytes = serde_json::to_vec(&Stored {
            event,
            env_refs: refs,
        })
        .map_err(write_err);
        for (spec, env) in specs_mut(event).into_iter().zip(taken) {
            if spec.base_env.is_empty() {
                spec.base_env = env;
            }
        }
        bytes
    }

    /// Gives back the environments a decoded record refers to.
    pub(crate) fn resolve(&self, event: &mut Event, bytes: &[u8]) -> Result<(), JournalError> {
        let seq = event.seq;
        let corrupt = |reason: String| JournalError::Corrupt { seq, reason };
        let mut specs = specs_mut(event);
        if !specs.iter().any(|spec| spec.base_env.is_empty()) {
            return Ok(());
        }
        let refs: Refs = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        for (spec, name) in specs.iter_mut().zip(refs.env_refs) {
            if let Some(name) = name {
                spec.base_env = self
                    .read(&name)?
                    .ok_or_else(|| corrupt(format!("its environment {name} is missing")))?;
            }
        }
        Ok(())
    }

    /// Stores `env` (if it is not yet); its name, or `None` when another environment already
    /// has its fingerprint (the record then keeps its environment inline).
    fn stash(
        &self,
        known: &mut Vec<(String, Env)>,
        env: &Env,
    ) -> Result<Option<String>, JournalError> {
        let hit = (known.iter().position(|(_, e)| Arc::ptr_eq(e, env)))
            .or_else(|| known.iter().position(|(_, e)| e == env));
        let name = match hit {
            Some(i) => {
                let entry = known.remove(i);
                let name = entry.0.clone();
                known.push(entry);
                name
            }
            None => {
                let json = serde_json::to_vec(&**env).map_err(write_err)?;
                let name = fingerprint(&json);
                match self.envs.get(&name)? {
                    Some(stored) if stored != json.as_slice() => return Ok(None),
                    Some(_) => {}
                    None => {
                        self.envs.insert(name.as_bytes(), json)?;
                    }
                }
                remember(known, name.clone(), env.clone());
                name
            }
        };
        Ok(Some(name))
    }

    fn read(&self, name: &str) -> Result<Option<Env>, JournalError> {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, env)) = known.iter().find(|(n, _)| n == name) {
            return Ok(Some(env.clone()));
        }
        let Some(json) = self.envs.get(name)? else {
            return Ok(None);
        };
        let env: Env =
            Arc::new(
                serde_json::from_slice(&json).map_err(|e| JournalError::Corrupt {
                    seq: 0,
                    reason: format!("stored environment {name}: {e}"),
                })?,
            );
        remember(&mut known, name.to_string(), env.clone());
        Ok(Some(env))
    }

    /// Retention removed the records `seqs`: forgets their uses, and the environments no
    /// record uses any more (decided under `known`'s lock, as `encode` records uses).
    pub(crate) fn release(&self, seqs: &BTreeSet<u64>) -> Result<(), JournalError> {
        let mut emptied = BTreeSet::new();
        for key in self.users.iter().keys() {
            let key = key?;
            let Some(split) = key.len().checked_sub(8) else {
                continue;
            };
            let seq = crate::journal::seq_of(&key[split..])?;
            if seqs.contains(&seq) {
                self.users.remove(&key)?;
                emptied.insert(key[..split].to_vec());
            }
        }
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        for name in emptied {
            if self.users.scan_prefix(&name).next().is_none() {
                self.envs.remove(&name)?;
                known.retain(|(n, _)| n.as_bytes() != name.as_slice());
            }
        }
        Ok(())
    }

    /// How many environments are stored.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.envs.len()
    }
}

fn remember(known: &mut Vec<(String, Env)>, name: String, env: Env) {
    if known.len() >= KNOWN_MAX {
        known.remove(0);
    }
    known.push((name, env));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Journal, SledJournal};
    use crate::retention::Retention;
    use crate::snapshot::{load_registry, take_snapshot};
    use pmx_core::event::{Cause, NewEvent};

    fn env(path: &str) -> Env {
        Arc::new(
            [
                ("PATH".to_string(), path.to_string()),
                ("HOME".to_string(), "/home/ada".to_string()),
            ]
            .into(),
        )
    }

    fn spec(name: &str, base_env: &Env) -> AppSpec {
        AppSpec {
            name: name.into(),
            script: "/bin/true".into(),
            base_env: base_env.clone(),
            ..AppSpec::default()
        }
    }

    fn new(app: &str, kind: EventKind) -> NewEvent {
        NewEvent {
            app: app.into(),
            instance: None,
            kind,
            cause: Cause::Boot,
        }
    }

    fn created(app: &str, base_env: &Env) -> NewEvent {
        let spec = Box::new(spec(app, base_env));
        new(app, EventKind::AppCreated { spec, ids: vec![0] })
    }

    fn open() -> (tempfile::TempDir, SledJournal) {
        let dir = tempfile::tempdir().unwrap();
        let journal = SledJournal::open(&dir.path().join("j")).unwrap();
        (dir, journal)
    }

    fn raw(journal: &SledJournal, seq: u64) -> String {
        let bytes = journal.events.get(seq.to_be_bytes()).unwrap().unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// Reads as a daemon that just opened the journal does, with nothing decoded yet.
    fn forget(journal: &SledJournal) {
        journal.envs.known.lock().unwrap().clear();
    }

    fn base_env(event: &Event) -> &Env {
        match &event.kind {
            EventKind::AppCreated { spec, .. } => &spec.base_env,
            other => panic!("not a creation: {other:?}"),
        }
    }

    #[test]
    fn an_environment_is_stored_once_and_read_back_shared() {
        let (_dir, journal) = open();
        let shared = env("/usr/local/bin:/usr/bin");
        let batch = (0..50).map(|i| created(&format!("a{i}"), &shared));
        let written = journal.append(batch.collect()).unwrap();
        journal.flush().unwrap();
        assert!(
            written.iter().all(|e| Arc::ptr_eq(base_env(e), &shared)),
            "the appended events stay whole"
        );
        assert_eq!(journal.envs.len(), 1);
        let record = raw(&journal, 7);
        assert!(!record.contains("/usr/local/bin"), "{record}");
        assert!(record.contains("env_refs"), "{record}");

        forget(&journal);
        let read = journal.all().unwrap();
        assert_eq!(read, written);
        assert!(
            read.iter()
                .all(|e| Arc::ptr_eq(base_env(e), base_env(&read[0]))),
            "specs read back share one environment"
        );
    }

    #[test]
    fn saved_specs_refer_to_their_environments_and_empty_ones_stay_empty() {
        let (_dir, journal) = open();
        let (one, two) = (env("/a"), env("/b"));
        let apps = vec![
            spec("a", &one),
            spec("b", &two),
            spec("c", &Env::default()),
            spec("d", &one),
        ];
        let written = journal
            .append(vec![new("", EventKind::Saved { apps })])
            .unwrap();
        assert_eq!(journal.envs.len(), 2);
        forget(&journal);
        assert_eq!(journal.all().unwrap(), written);
    }

    #[test]
    fn a_fingerprint_another_environment_holds_keeps_the_record_inline() {
        let (_dir, journal) = open();
        let mine = env("/mine");
        let name = fingerprint(&serde_json::to_vec(&*mine).unwrap());
        let theirs = serde_json::to_vec(&*env("/theirs")).unwrap();
        journal.envs.envs.insert(name.as_bytes(), theirs).unwrap();
        let written = journal.append(vec![created("a", &mine)]).unwrap();
        assert!(raw(&journal, 1).contains("/mine"));
        forget(&journal);
        assert_eq!(journal.all().unwrap(), written);
    }

    #[test]
    fn a_record_whose_environment_is_missing_is_corrupt_and_skipped() {
        let (_dir, journal) = open();
        journal
            .append(vec![
                created("a", &env("/a")),
                created("b", &Env::default()),
            ])
            .unwrap();
        journal.envs.envs.clear().unwrap();
        forget(&journal);
        let err = journal.all().unwrap_err().to_string();
        assert!(err.contains("record 1") && err.contains("missing"), "{err}");
        let mut seen = Vec::new();
        let skipped = journal.replay_after(0, &mut |e| seen.push(e.app)).unwrap();
        assert_eq!((skipped, seen), (1, vec!["b".to_string()]));
    }

    #[test]
    fn retention_drops_an_environment_with_the_last_record_that_used_it() {
        let (_dir, journal) = open();
        let (gone, kept) = (env("/gone"), env("/kept"));
        let command = |app: &str| {
            let verb = "restart".to_string();
            new(app, EventKind::Command { verb })
        };
        journal
            .append(vec![
                created("a", &gone),
                created("b", &kept),
                created("c", &kept),
            ])
            .unwrap();
        for _ in 0..10 {
            journal.append(vec![command("a"), command("c")]).unwrap();
        }
        journal.append(vec![command("b")]).unwrap();
        take_snapshot(&journal).unwrap();
        let cut = journal.compact(&Retention::new(0, 5), 0).unwrap();
        assert_eq!(cut.removed, 12, "a's and c's creation and 5 commands each");
        assert_eq!(
            journal.envs.len(),
            1,
            "b's creation still uses its environment"
        );
        forget(&journal);
        let b = journal.for_app("b", None).unwrap();
        assert_eq!(base_env(&b[0]), &kept);
        let registry = load_registry(&journal).unwrap().0.registry;
        assert_eq!(
            registry.apps["a"].spec.base_env, gone,
            "the snapshot holds the environment of a record retention removed"
        );
    }

    /// Retention (the compactor's thread) releasing the last use of an environment while a
    /// record naming it is being written (the actor's thread): the record must still read.
    #[test]
    fn a_release_racing_an_append_never_removes_the_environment_it_names() {
        let (_dir, journal) = open();
        let shared = env("/raced");
        let mut last = journal.append(vec![created("a", &shared)]).unwrap()[0].seq;
        for round in 0..500 {
            let barrier = std::sync::Barrier::new(2);
            let seq = std::thread::scope(|s| {
                s.spawn(|| {
                    barrier.wait();
                    journal.envs.release(&BTreeSet::from([last])).unwrap();
                });
                barrier.wait();
                journal.append(vec![created("a", &shared)]).unwrap()[0].seq
            });
            forget(&journal);
            let read = journal.page_after(None, seq - 1, 1);
            assert!(read.is_ok(), "round {round}: {read:?}");
            last = seq;
        }
    }
}
