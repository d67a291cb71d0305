//! `Paths`: every file pmx uses, rooted at `PMX_HOME` (default `~/.pmx`). Nothing else
//! decides where files live.

use std::path::{Path, PathBuf};

/// The user name of `uid` in the text of /etc/passwd.
pub fn passwd_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid.to_string()).then(|| name.to_string())
    })
}

/// The home directory of the user called `name` in the text of /etc/passwd.
pub fn passwd_home(passwd: &str, name: &str) -> Option<String> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 6 && fields[0] == name).then(|| fields[5].to_string())
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    home: PathBuf,
}

impl Paths {
    pub fn new(home: impl Into<PathBuf>) -> Self {
        Self { home: home.into() }
    }

    /// `$PMX_HOME`, else `$HOME/.pmx`, else `/tmp/.pmx-<uid>` supplied by the caller.
    pub fn from_env(fallback_home: impl FnOnce() -> PathBuf) -> Self {
        if let Some(home) = std::env::var_os("PMX_HOME").filter(|h| !h.is_empty()) {
            return Self::new(PathBuf::from(home));
        }
        match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(home) => Self::new(PathBuf::from(home).join(".pmx")),
            None => Self::new(fallback_home()),
        }
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The daemon's Unix socket (mode 0600).
    pub fn socket(&self) -> PathBuf {
        self.home.join("pmx.sock")
    }

    /// The sled journal directory.
    pub fn journal(&self) -> PathBuf {
        self.home.join("journal")
    }

    /// The daemon's own log (stdout/stderr of a background daemon).
    pub fn daemon_log(&self) -> PathBuf {
        self.home.join("pmx.log")
    }

    /// Held (flock) by the running daemon; holds its pid.
    pub fn pid_file(&self) -> PathBuf {
        self.home.join("pmx.pid")
    }

    /// The daemon's pid where PM2 keeps it (`kill $(cat ~/.pm2/pm2.pid)`); not a lock.
    pub fn pm2_pid_file(&self) -> PathBuf {
        self.home.join("pm2.pid")
    }

    /// The daemon's settings (`metrics = "127.0.0.1:9615"`, ...), read when it starts.
    pub fn daemon_config(&self) -> PathBuf {
        self.home.join("daemon.toml")
    }

    /// The dashboard's token (mode 0600): actions over HTTP need it.
    pub fn dashboard_token(&self) -> PathBuf {
        self.home.join("dashboard.token")
    }

    /// `save`'s copy of the saved list in PM2's format (`dump.pm2`, mode 0600), for tools
    /// and people used to PM2's; the journal's save is what `resurrect` brings back.
    pub fn dump_file(&self) -> PathBuf {
        self.home.join("dump.pm2")
    }

    /// The dump before the last `save` (PM2's `dump.pm2.bak`).
    pub fn dump_backup(&self) -> PathBuf {
        self.home.join("dump.pm2.bak")
    }

    /// Where a dump that is not valid JSON is set aside by `resurrect`.
    pub fn dump_broken(&self) -> PathBuf {
        self.home.join("dump.pm2.broken")
    }

    /// `pmx set`'s values (PM2's `module_conf.json`, mode 0600).
    pub fn module_conf(&self) -> PathBuf {
        self.home.join("module_conf.json")
    }

    /// Directory of app logs.
    pub fn logs(&self) -> PathBuf {
        self.home.join("logs")
    }

    /// Directory of instances' pid files (PM2's `~/.pm2/pids`).
    pub fn pids(&self) -> PathBuf {
        self.home.join("pids")
    }

    /// Default pid file of an instance: `pids/NAME-ID.pid`, as PM2 names it.
    pub fn instance_pid_file(&self, app: &str, id: u32) -> PathBuf {
        self.pids().join(format!("{app}-{id}.pid"))
    }

    /// Where instances' `NOTIFY_SOCKET`s are (sd_notify readiness).
    pub fn notify_dir(&self) -> PathBuf {
        self.home.join("notify")
    }

    /// The preload that makes Node apps use the sockets the daemon holds.
    pub fn node_shim(&self) -> PathBuf {
        self.home.join("node-shim.cjs")
    }

    /// Default stdout log of an instance: `NAME-out.log`, or `NAME-out-ID.log` when the app
    /// has several instances (PM2's names).
    pub fn out_log(&self, app: &str, id: Option<u32>) -> PathBuf {
        self.app_log(app, "out", id)
    }

    /// Default stderr log of an instance: `NAME-error.log` or `NAME-error-ID.log`.
    pub fn error_log(&self, app: &str, id: Option<u32>) -> PathBuf {
        self.app_log(app, "error", id)
    }

    fn app_log(&self, app: &str, stream: &str, id: Option<u32>) -> PathBuf {
        match id {
            Some(id) => self.logs().join(format!("{app}-{stream}-{id}.log")),
            None => self.logs().join(format!("{app}-{stream}.log")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_come_from_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nann:x:1000:1000::/home/ann:/bin/sh\n";
        assert_eq!(passwd_name(passwd, 1000).as_deref(), Some("ann"));
        assert_eq!(passwd_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(passwd_name(passwd, 7), None);
        assert_eq!(passwd_home(passwd, "ann").as_deref(), Some("/home/ann"));
        assert_eq!(passwd_home(passwd, "an"), None);
    }
}
