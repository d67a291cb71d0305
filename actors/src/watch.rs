//! File watching for `watch: true | [paths]`: one inotify watcher (notify) for the daemon,
//! created at the first app that watches. A change under an app's watched paths that no
//! ignore pattern matches is sent to the app's actor, which debounces it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use actix::prelude::*;
use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

/// A watched file changed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FilesChanged {
    pub path: PathBuf,
}

/// Ignored under every watched path, as PM2 users expect.
const ALWAYS_IGNORED: [&str; 2] = ["node_modules", ".git"];

struct Registration {
    app: String,
    roots: Vec<PathBuf>,
    ignore: Vec<glob::Pattern>,
    /// The app's own log files: writing them must not restart it.
    own_files: Vec<PathBuf>,
    actor: Recipient<FilesChanged>,
}

/// Two locks: the watcher's thread takes `apps` to route an event, while `watch()` waits for
/// that thread, so `watcher` must never be held together with `apps`.
#[derive(Clone, Default)]
pub struct WatchHub {
    watcher: Arc<Mutex<Option<RecommendedWatcher>>>,
    apps: Arc<Mutex<Vec<Registration>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether `pattern` (a name like `node_modules`, or a glob like `*.log` or `logs/**`)
/// matches `path` under `root`: any component by name, or the relative path or file name by
/// glob.
fn ignored(root: &Path, path: &Path, patterns: &[glob::Pattern]) -> bool {
    let Ok(relative) = path.strip_prefix(root) else {
        return true;
    };
    let names: Vec<&str> = relative
        .components()
        .filter_map(|c| c.as_os_str().to_str())
        .collect();
    let file = names.last().copied().unwrap_or("");
    names.iter().any(|n| ALWAYS_IGNORED.contains(n))
        || patterns.iter().any(|p| {
            names.iter().any(|n| p.as_str() == *n) || p.matches_path(relative) || p.matches(file)
        })
}

/// Whether `path` is one of the app's log files, or a rotated (or being gzipped) copy of one:
/// `api-out.log` → `api-out__2026-11-21_10-00-00.log.gz`.
fn is_own(own_files: &[PathBuf], path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    own_files.iter().any(|own| {
        let own_name = own.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let stem = own_name.strip_suffix(".log").unwrap_or(own_name);
        own == path
            || (own.parent() == path.parent()
                && name.strip_prefix(stem).is_some_and(|r| r.starts_with("__")))
    })
}

impl WatchHub {
    /// Watches `roots` for `app`; the returned problems are paths that cannot be watched.
    pub fn register(
        &self,
        app: &str,
        roots: Vec<PathBuf>,
        ignore: &[String],
        own_files: Vec<PathBuf>,
        actor: Recipient<FilesChanged>,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        let ignore = ignore
            .iter()
            .filter_map(|p| match glob::Pattern::new(p.trim_start_matches("./")) {
                Ok(p) => Some(p),
                Err(e) => {
                    problems.push(format!("ignore_watch {p:?}: {e}"));
                    None
                }
            })
            .collect();
        let mut watcher = lock(&self.watcher);
        if watcher.is_none() {
            let handle = self.clone();
            match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event {
                    handle.changed(event);
                }
            }) {
                Ok(w) => *watcher = Some(w),
                Err(e) => {
                    problems.push(format!("cannot watch files: {e}"));
                    return problems;
                }
            }
        }
        if let Some(watcher) = watcher.as_mut() {
            for root in &roots {
                if let Err(e) = watcher.watch(root, RecursiveMode::Recursive) {
                    problems.push(format!("cannot watch {}: {e}", root.display()));
                }
            }
        }
        drop(watcher);
        let mut apps = lock(&self.apps);
        apps.retain(|r| r.app != app);
        apps.push(Registration {
            app: app.to_string(),
            roots,
            ignore,
            own_files,
            actor,
        });
        problems
    }

    /// Stops watching for `app`; roots no other app watches are released.
    pub fn unregister(&self, app: &str) {
        let (gone, still) = {
            let mut apps = lock(&self.apps);
            let Some(at) = apps.iter().position(|r| r.app == app) else {
                return;
            };
            let gone = apps.swap_remove(at);
            let still: Vec<PathBuf> = apps.iter().flat_map(|r| r.roots.clone()).collect();
            (gone, still)
        };
        if let Some(watcher) = lock(&self.watcher).as_mut() {
            for root in gone.roots.iter().filter(|r| !still.contains(r)) {
                let _ = watcher.unwatch(root);
            }
        }
    }

    fn changed(&self, event: notify::Event) {
        let relevant = matches!(
            event.kind,
            EventKind::Create(_)
                | EventKind::Modify(_)
                | EventKind::Remove(_)
                | EventKind::Access(AccessKind::Close(AccessMode::Write))
        );
        if !relevant {
            return;
        }
        let apps = lock(&self.apps);
        for path in &event.paths {
            for r in apps.iter() {
                let watched = r.roots.iter().find(|root| path.starts_with(root));
                if let Some(root) = watched
                    && !is_own(&r.own_files, path)
                    && !ignored(root, path, &r.ignore)
                {
                    r.actor.do_send(FilesChanged { path: path.clone() });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(p: &[&str]) -> Vec<glob::Pattern> {
        p.iter().map(|p| glob::Pattern::new(p).unwrap()).collect()
    }

    #[test]
    fn names_and_globs_are_ignored_anywhere_under_the_root() {
        let root = Path::new("/app");
        let ig = patterns(&["*.log", "tmp", "config/*.bak"]);
        assert!(ignored(
            root,
            Path::new("/app/node_modules/x/index.js"),
            &ig
        ));
        assert!(ignored(root, Path::new("/app/.git/HEAD"), &ig));
        assert!(ignored(root, Path::new("/app/logs/out.log"), &ig));
        assert!(ignored(root, Path::new("/app/src/tmp/a.js"), &ig));
        assert!(ignored(root, Path::new("/app/config/a.bak"), &ig));
        assert!(!ignored(root, Path::new("/app/src/index.js"), &ig));
        assert!(!ignored(root, Path::new("/app/config/a.json"), &ig));
        assert!(ignored(root, Path::new("/elsewhere/a.js"), &ig));
    }

    #[test]
    fn the_apps_own_logs_and_their_rotations_are_its_own() {
        let own = vec![PathBuf::from("/app/logs/api-out.log")];
        assert!(is_own(&own, Path::new("/app/logs/api-out.log")));
        assert!(is_own(
            &own,
            Path::new("/app/logs/api-out__2026-11-21_10-00-00.log.gz")
        ));
        assert!(is_own(
            &own,
            Path::new("/app/logs/api-out__2026-11-21_10-00-00.log.gz.tmp")
        ));
        assert!(!is_own(&own, Path::new("/app/logs/api-outer.log")));
        assert!(!is_own(&own, Path::new("/app/src/api-out__x.log")));
    }
}
