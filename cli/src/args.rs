//! The command line: PM2's verbs and flags, plus pmx's own.

use clap::{Args, Parser, Subcommand};
use pmx_core::units::parse_duration_ms;

#[derive(Debug, Parser)]
#[command(
    name = "pmx",
    version,
    about = "A production process manager: PM2's command line, one small binary"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Verb,
}

/// A verb's arguments that clap builds only when that verb is the one typed. `start`'s
/// eighty flags, built for three verbs at every run of every command, were most of the CLI's
/// start-up work (heap and time) beyond the exec itself.
#[derive(Debug)]
pub struct Deferred<T>(pub Box<T>);

impl<T: Args> Args for Deferred<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_args)
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_args_for_update)
    }
    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }
}

impl<T: clap::FromArgMatches> clap::FromArgMatches for Deferred<T> {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(|t| Deferred(Box::new(t)))
    }
    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }
}

#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Start an app: a script, a binary, or a quoted shell command line
    Start(Deferred<StartArgs>),
    /// PM2's verb: `start`, which restarts the apps of a config file that are registered
    #[command(name = "startOrRestart")]
    StartOrRestart(Deferred<StartArgs>),
    /// PM2's verb: as `start`, but the registered apps of a config file are reloaded
    #[command(name = "startOrReload", alias = "startOrGracefulReload")]
    StartOrReload(Deferred<StartArgs>),
    /// Stop apps (name, id, or all)
    Stop(StopArgs),
    /// Restart apps (names, ids, all, or a config file: the apps it declares)
    Restart(RestartArgs),
    /// Replace instances one by one with new ready processes (apps with `listen`; others restart)
    Reload(ReloadArgs),
    /// Stop and remove apps
    #[command(alias = "del")]
    Delete(TargetArgs),
    /// Set restart counters to zero
    Reset(TargetArgs),
    /// Send a signal to apps and everything they spawned
    #[command(name = "sendSignal", alias = "send-signal")]
    SendSignal(SignalArgs),
    /// List apps
    #[command(visible_aliases = ["ls", "status"], alias = "l")]
    List,
    /// List apps as JSON, in PM2's `jlist` shape
    Jlist,
    /// Show everything about apps
    #[command(visible_alias = "show", alias = "desc")]
    Describe(TargetArgs),
    /// What happened to an app, oldest first, with causes
    History(HistoryArgs),
    /// Check the daemon answers (starts it when none runs)
    Ping,
    /// Stop every app, then the daemon; the next daemon brings the same apps back
    Kill,
    /// Record the current apps as a checkpoint in the journal
    #[command(alias = "dump")]
    Save,
    /// Bring back the apps of the last `save`: register deleted ones, start stopped ones
    Resurrect,
    /// Print a systemd unit that runs the daemon at boot (--install writes and enables it)
    Startup(StartupArgs),
    /// Disable and remove what `startup` installed
    Unstartup {
        /// The init system: `systemd` (default), `upstart` or `systemv` (an /etc/init.d script)
        platform: Option<String>,
        /// Whose service to remove; default: yours
        #[arg(short = 'u', long)]
        user: Option<String>,
        /// The service's name, if `startup` was given one
        #[arg(long)]
        service_name: Option<String>,
    },
    /// Run the daemon in the foreground (also the container entrypoint, as PID 1)
    Daemon(DaemonArgs),
    /// Converge to a config script: start what is new, restart what changed, leave the rest
    Up(UpArgs),
    /// Upgrade the daemon in place to this pmx, without restarting any app (PM2's
    /// `updatePM2` too)
    #[command(alias = "updatePM2")]
    Update {
        /// The daemon program to run (default: the `pmxd` beside this pmx, else this pmx)
        #[arg(long)]
        binary: Option<String>,
    },
    /// Write apps as another engine's files (systemd, kubernetes, nomad, compose), with a
    /// report of what does not carry over (exit 3 when there is some)
    Export(ExportArgs),
    /// Show apps' last log lines, then follow new ones (all, a name, an id, or /regex/)
    Logs(LogsArgs),
    /// Empty apps' log files
    Flush(FlushArgs),
    /// Reopen every log file (after an outside logrotate moved them)
    #[command(name = "reloadLogs", alias = "reload-logs")]
    ReloadLogs,
    /// Print the environment an app runs with (values: only for the daemon's user)
    Env(TargetArgs),
    /// Re-apply an app's spec of an earlier config revision (default: its previous spec)
    Rollback(RollbackArgs),
    /// Write a starter config script
    #[command(alias = "init")]
    Ecosystem {
        /// Where to write it
        #[arg(default_value = "policies.rhai")]
        file: String,
        /// Overwrite the file if it exists
        #[arg(long)]
        force: bool,
    },
    /// Set a value, as PM2's `set`: `APP.KEY VALUE` gives app APP's processes the variable
    /// KEY (a running app restarts); `pm2-logrotate:KEY VALUE` sets log rotation (max_size,
    /// retain, compress, dateFormat, rotateInterval) for apps without their own
    Set {
        /// APP.KEY, pm2-logrotate:KEY, or KEY
        key: String,
        /// The value
        value: String,
    },
    /// Set several values: "KEY VALUE KEY VALUE ..."
    Multiset {
        /// Pairs, space separated
        pairs: String,
    },
    /// Remove a value set by `set` (APP.KEY, or APP for all of an app's)
    Unset {
        /// APP.KEY, APP, pm2-logrotate:KEY, or KEY
        key: String,
    },
    /// Print a value set by `set`, or all of them
    Get {
        /// APP.KEY, APP, pm2-logrotate:KEY, or KEY
        key: Option<String>,
    },
    /// Set an app's number of instances: N, +N or -N (the others keep running)
    Scale {
        /// The app
        app: String,
        /// N, +N or -N
        #[arg(allow_hyphen_values = true)]
        count: pmx_core::protocol::ScaleCount,
    },
    /// Full-screen monitor: apps, CPU and memory charts, the selected app's logs and history
    Monit,
    /// Serve a directory's files over HTTP, as an app (PM2's `serve`)
    Serve(ServeArgs),
    /// The static file server itself (what `serve` starts; set by PM2_SERVE_* variables)
    #[command(hide = true)]
    ServeFiles,
    /// Where the web dashboard and /metrics are served (`--token`: the token actions need)
    Dashboard {
        /// Print only the token
        #[arg(long)]
        token: bool,
    },
    /// List the loaded rules: their trigger, when each last ran and fired, what it did, errors
    Rules {
        /// As JSON
        #[arg(long)]
        json: bool,
    },
    /// Print a PM2 ecosystem file (.js, .json, .yml, .toml) as an equivalent Rhai config
    Convert {
        /// The ecosystem file
        file: String,
    },
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// `all` (default), an app name, an id, or a regex over names written `/re/`
    pub target: Option<String>,
    /// Lines to show from each file first
    #[arg(long, default_value_t = 15)]
    pub lines: usize,
    /// Show the last lines only, do not follow
    #[arg(long)]
    pub nostream: bool,
    /// Only stdout
    #[arg(long)]
    pub out: bool,
    /// Only stderr
    #[arg(long)]
    pub err: bool,
    /// Lines only, no app prefix
    #[arg(long)]
    pub raw: bool,
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
    /// Prefix followed lines with the time they were captured (moment.js format)
    #[arg(long, num_args = 0..=1, default_missing_value = "YYYY-MM-DD HH:mm:ss")]
    pub timestamp: Option<String>,
}

#[derive(Debug, Args)]
pub struct FlushArgs {
    /// Names, ids, or `all` (default)
    pub targets: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The directory (default: this one); a number alone is the port
    pub path: Option<String>,
    /// The port (default 8080)
    pub port: Option<u16>,
    #[arg(long = "port", id = "port_flag")]
    pub port_flag: Option<u16>,
    /// A single-page app: a path that names no file gets the homepage
    #[arg(long)]
    pub spa: bool,
    /// The page `/` answers with (default /index.html)
    #[arg(long)]
    pub homepage: Option<String>,
    #[arg(long, requires = "basic_auth_password")]
    pub basic_auth_username: Option<String>,
    #[arg(long, requires = "basic_auth_username")]
    pub basic_auth_password: Option<String>,
    /// The app's name (default: static-page-server-PORT)
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct StartupArgs {
    /// The init system: `systemd` (default), `upstart` or `systemv` (an /etc/init.d script)
    pub platform: Option<String>,
    /// Install even when not root (as root, `startup` installs, as PM2's does)
    #[arg(long, conflicts_with = "print")]
    pub install: bool,
    /// Only print what would be installed
    #[arg(long)]
    pub print: bool,
    /// The user the daemon runs as (root writes another user's service); default: you
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// That user's home directory (PMX_HOME becomes HP/.pmx); default: from /etc/passwd
    #[arg(long = "hp")]
    pub home_path: Option<std::path::PathBuf>,
    /// The service's name (default: pm2-USER, the service `pmx startup` replaces)
    #[arg(long)]
    pub service_name: Option<String>,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// Names, ids, `all`, or config files
    #[arg(required = true)]
    pub targets: Vec<String>,
    /// From now on, restart at each tick of this cron expression (`0`: no more), as PM2's
    /// `restart --cron-restart`
    #[arg(short = 'c', long, alias = "cron", value_parser = cron_or_none)]
    pub cron_restart: Option<String>,
    /// From now on, run the interpreter with these arguments (one string; "" for none)
    #[arg(
        long = "node-args",
        alias = "interpreter-args",
        allow_hyphen_values = true
    )]
    pub node_args: Option<String>,
    /// Turn watching on (the app's watch paths, else its directory) or off, as PM2's
    /// `restart --watch` toggles it
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Rename the app (one app): its ids, restart count and settings stay
    #[arg(short = 'n', long)]
    pub name: Option<String>,
    /// Take the environment of this command (and of the config file) instead of the one the
    /// app started with; variables that are gone are removed
    #[arg(long)]
    pub update_env: bool,
    /// With a config file: merge `env_NAME` over `env`
    #[arg(long)]
    pub env: Option<String>,
    /// With a config file: only these apps of it (comma separated)
    #[arg(long)]
    pub only: Option<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Names, ids, `all`, or config files
    #[arg(required = true)]
    pub targets: Vec<String>,
    /// Stop even an app that a running app depends on (`depends_on`)
    #[arg(long)]
    pub force: bool,
    /// With a config file: only these apps of it (comma separated)
    #[arg(long)]
    pub only: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReloadArgs {
    #[command(flatten)]
    pub restart: RestartArgs,
    /// Instances replaced at once
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub parallel: u32,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The app
    pub app: String,
    /// The config revision whose spec to take (see `pmx history APP`)
    #[arg(long)]
    pub to: Option<u64>,
    /// Print the plan, change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// The config: a Rhai script (policies.rhai) or a PM2 ecosystem file (.js, .json, .yml,
    /// .toml)
    pub file: String,
    /// Merge `env_NAME` over `env` (e.g. --env production)
    #[arg(long)]
    pub env: Option<String>,
    /// Only these apps of the file (comma separated)
    #[arg(long)]
    pub only: Option<String>,
    /// Stop and delete apps the file no longer declares
    #[arg(long)]
    pub prune: bool,
    /// Print the plan, change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// What becomes of the declared apps whose spec did not change (`pmx up` keeps them;
    /// `start FILE` restarts them, as PM2 does)
    #[arg(skip)]
    pub unchanged: pmx_core::protocol::Unchanged,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The engine: systemd, kubernetes, nomad or compose
    #[arg(long)]
    pub to: String,
    /// A config (Rhai or a PM2 ecosystem file); without it, the apps the daemon runs
    pub file: Option<String>,
    /// Write one file per object into this directory (default: standard output, without
    /// the files that hold environment values)
    #[arg(long)]
    pub out: Option<String>,
    /// Only these apps (comma separated)
    #[arg(long)]
    pub only: Option<String>,
    /// The image every container runs (kubernetes, compose); without it, a Containerfile
    /// per app and the manifests name the image it builds
    #[arg(long)]
    pub image: Option<String>,
    /// Nomad: `hcl` (default) or `json` (the HTTP API's form)
    #[arg(long, default_value = "hcl")]
    pub format: String,
    /// Also write the report of what did not carry over to this file
    #[arg(long)]
    pub report: Option<String>,
    /// Merge `env_NAME` over `env` in the config (e.g. --env production)
    #[arg(long)]
    pub env: Option<String>,
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Accepted for PM2's habit (`pm2 start --no-daemon`): the daemon always runs in the
    /// foreground of this command
    #[arg(long)]
    pub no_daemon: bool,
    /// Journal retention: remove events older than this many days (0: keep them)
    #[arg(long, env = "PMX_RETENTION_DAYS", default_value_t = pmx_actors::DEFAULT_RETENTION_DAYS)]
    pub retention_days: u64,
    /// Journal retention: keep at most this many events per app (0: no limit)
    #[arg(long, env = "PMX_RETENTION_EVENTS", default_value_t = pmx_actors::DEFAULT_EVENTS_PER_APP)]
    pub retention_events: usize,
    /// Log rotation: rotate a log file when it reaches this size (10M, 1G; 0: never)
    #[arg(long, env = "PMX_LOG_MAX_SIZE", default_value = "10M", value_parser = size)]
    pub log_max_size: u64,
    /// Log rotation: rotated files kept per log file
    #[arg(long, env = "PMX_LOG_RETAIN", default_value_t = 30)]
    pub log_retain: u32,
    /// Log rotation: gzip rotated files
    #[arg(long, env = "PMX_LOG_COMPRESS")]
    pub log_compress: bool,
    /// Log rotation: date in rotated names, moment.js style
    #[arg(
        long,
        env = "PMX_LOG_DATE_FORMAT",
        default_value = "YYYY-MM-DD_HH-mm-ss"
    )]
    pub log_date_format: String,
    /// Log rotation: also rotate at each tick of this cron expression ("0 0 * * *")
    #[arg(long, env = "PMX_LOG_ROTATE_INTERVAL", value_parser = cron_expr)]
    pub log_rotate_interval: Option<String>,
    /// How often every instance's CPU and memory are measured (and memory limits checked)
    #[arg(long, env = "PMX_SAMPLE_INTERVAL", default_value = "1s", value_parser = interval)]
    pub sample_interval: u64,
    /// Serve Prometheus /metrics, the JSON API and the web dashboard on this address: a port
    /// (9615, on loopback) or IP:PORT; any other address than loopback requires the token for
    /// every request
    #[arg(long, env = "PMX_METRICS", value_name = "ADDR", value_parser = http_addr)]
    pub metrics: Option<std::net::SocketAddr>,
}

/// A port alone means loopback: the listener is never public unless asked to be.
fn http_addr(value: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(port) = value.parse::<u16>() {
        return Ok((std::net::Ipv4Addr::LOCALHOST, port).into());
    }
    value
        .parse()
        .map_err(|_| "expected a port (9615, on 127.0.0.1) or IP:PORT (0.0.0.0:9615)".into())
}

fn interval(value: &str) -> Result<u64, String> {
    match parse_duration_ms(value) {
        Ok(ms) if ms >= 50 => Ok(ms),
        Ok(_) => Err("at least 50ms".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn size(value: &str) -> Result<u64, String> {
    pmx_core::units::parse_size_bytes(value).map_err(|e| e.to_string())
}

fn cron_expr(value: &str) -> Result<String, String> {
    pmx_core::units::validate_cron("--log-rotate-interval", value)
}

fn cron_restart(value: &str) -> Result<String, String> {
    pmx_core::units::validate_cron("--cron-restart", value)
}

/// A cron expression, or `0` for none (PM2's way of removing one).
fn cron_or_none(value: &str) -> Result<String, String> {
    if value == "0" {
        return Ok(String::new());
    }
    cron_restart(value)
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Names, ids, or `all`
    #[arg(required = true)]
    pub targets: Vec<String>,
    /// With a config file: only these apps of it (comma separated)
    #[arg(long)]
    pub only: Option<String>,
}

#[derive(Debug, Args)]
pub struct SignalArgs {
    /// SIGUSR2, USR2 or 12
    pub signal: String,
    #[arg(required = true)]
    pub targets: Vec<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// An app name, or `all`
    pub target: String,
    /// Only the last N events
    #[arg(long)]
    pub limit: Option<usize>,
    /// Only events since a time: a duration ago (10m, 2h) or a timestamp (2026-11-21T10:00:00Z)
    #[arg(long)]
    pub since: Option<String>,
    /// Only events before a time (same forms as --since)
    #[arg(long)]
    pub until: Option<String>,
    /// Only events of this instance (pm_id)
    #[arg(long)]
    pub instance: Option<u32>,
    /// Keep printing new events as they happen, until Ctrl-C
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
}

fn duration(value: &str) -> Result<u64, String> {
    parse_duration_ms(value).map_err(|e| e.to_string())
}

fn listen_addr(value: &str) -> Result<String, String> {
    pmx_core::listen::ListenAddr::parse(value).map(|_| value.to_string())
}

fn instances(value: &str) -> Result<u32, String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    match value {
        "max" | "0" => Ok(cores),
        // PM2's "all cores but N", never fewer than one.
        n => match n.strip_prefix('-').map(str::parse::<u32>) {
            Some(Ok(fewer)) => Ok(cores.saturating_sub(fewer).max(1)),
            _ => n
                .parse::<u32>()
                .map_err(|_| format!("invalid instances `{n}`: a number, `max` or -N")),
        },
    }
}

#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    /// Script path, binary, or a quoted command line ("python3 -m http.server")
    pub script: String,
    /// More scripts, each started as its own app (`pmx start a.js b.js`)
    pub more_scripts: Vec<String>,
    /// App name (default: the script's file name without extension)
    #[arg(short, long)]
    pub name: Option<String>,
    /// Working directory of the app (default: the current directory)
    #[arg(long)]
    pub cwd: Option<String>,
    /// Namespace of the app (default `default`): a target for stop, restart, delete...
    #[arg(long)]
    pub namespace: Option<String>,
    /// Interpreter (node, python3, ...) or `none` to execute the file directly
    #[arg(long)]
    pub interpreter: Option<String>,
    /// Arguments for the interpreter, as one string
    #[arg(long, alias = "node-args", allow_hyphen_values = true)]
    pub interpreter_args: Option<String>,
    /// Environment variable for the app, K=V (repeatable)
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Number of instances: N, `max` or 0 (every core), -1 (every core but one)
    #[arg(short = 'i', long, value_parser = instances, allow_hyphen_values = true)]
    pub instances: Option<u32>,
    /// Address the daemon listens on for the app and passes to every instance (socket
    /// activation; Node apps need no change): PORT, HOST:PORT or a socket path (repeatable)
    #[arg(long, value_parser = listen_addr)]
    pub listen: Vec<String>,
    /// An instance is online when it says so (sd_notify READY=1, or process.send('ready'))
    #[arg(long)]
    pub wait_ready: bool,
    /// How long an instance has to be ready (default 3000 ms)
    #[arg(long, value_parser = duration)]
    pub listen_timeout: Option<u64>,
    /// Do not restart the app when it exits
    #[arg(long)]
    pub no_autorestart: bool,
    /// Unstable restarts in a row before the app is `errored` (default 16)
    #[arg(long)]
    pub max_restarts: Option<u32>,
    /// A run shorter than this is unstable (default 1000 ms; 1500, 1.5s, 2m)
    #[arg(long, value_parser = duration)]
    pub min_uptime: Option<u64>,
    /// Delay before a restart (default 0)
    #[arg(long, value_parser = duration)]
    pub restart_delay: Option<u64>,
    /// Exponential backoff restart delay, starting at this value
    #[arg(long, value_parser = duration)]
    pub exp_backoff_restart_delay: Option<u64>,
    /// Exit codes that mean "done, don't restart" (comma or space separated)
    #[arg(long, value_delimiter = ',', num_args = 1.., allow_negative_numbers = true)]
    pub stop_exit_codes: Vec<i32>,
    /// Time between the stop signal and SIGKILL (default 1600 ms)
    #[arg(long, value_parser = duration)]
    pub kill_timeout: Option<u64>,
    /// Signal sent to stop the app (default SIGINT)
    #[arg(long)]
    pub kill_signal: Option<String>,
    /// stdout log file (`/dev/null`: discard)
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
    /// stderr log file (`/dev/null`: discard)
    #[arg(short = 'e', long = "error")]
    pub error: Option<String>,
    /// Combined stdout and stderr log file
    #[arg(short = 'l', long = "log")]
    pub log: Option<String>,
    /// Write each instance's pid to this file, `-ID` before its extension (`app.pid` →
    /// `app-0.pid`), removed when the instance stops
    #[arg(short = 'p', long = "pid")]
    pub pid: Option<String>,
    /// One log file for all instances
    #[arg(long)]
    pub merge_logs: bool,
    /// Prefix log lines with a timestamp
    #[arg(long)]
    pub time: bool,
    /// Timestamp format of log lines (moment.js style, e.g. "YYYY-MM-DD HH:mm Z")
    #[arg(long)]
    pub log_date_format: Option<String>,
    /// `raw` or `json` (one JSON object per line)
    #[arg(long, value_parser = ["raw", "json"])]
    pub log_type: Option<String>,
    /// Restart an instance gracefully when its memory (process tree) is above this (512M)
    #[arg(long, value_parser = size)]
    pub max_memory_restart: Option<u64>,
    /// Restart at each tick of this cron expression (5 fields, or 6 with seconds)
    #[arg(short = 'c', long, alias = "cron", value_parser = cron_restart)]
    pub cron_restart: Option<String>,
    /// Restart when files change: under these paths (comma separated), or the app's directory
    #[arg(long, num_args = 0.., value_delimiter = ',')]
    pub watch: Option<Vec<String>>,
    /// With --watch: names or globs to ignore (node_modules and .git always are)
    #[arg(long, num_args = 1.., value_delimiter = ',')]
    pub ignore_watch: Vec<String>,
    /// With --watch: wait this long after a change before restarting (default 1s)
    #[arg(long, value_parser = duration)]
    pub watch_delay: Option<u64>,
    /// When an app of this name is registered: add instances of it (PM2's -f) instead of
    /// refusing the script as already launched
    #[arg(short = 'f', long)]
    pub force: bool,
    /// With a config file: only these apps of it (comma separated)
    #[arg(long)]
    pub only: Option<String>,
    /// Stop an instance with a `shutdown` message on its IPC channel (Node) before the signal
    #[arg(long)]
    pub shutdown_with_message: bool,
    /// Keep no log files (both streams to /dev/null)
    #[arg(long)]
    pub disable_logs: bool,
    /// Node: map stack traces through source maps (on by default when SCRIPT.map exists)
    #[arg(long, conflicts_with = "disable_source_map_support")]
    pub source_map_support: bool,
    /// Node: never map stack traces through source maps
    #[arg(long)]
    pub disable_source_map_support: bool,
    /// Do not read the git version of the app's code (PM2's vizion)
    #[arg(long)]
    pub no_vizion: bool,
    /// A Node app reports garbage collection and HTTP figures too
    #[arg(long)]
    pub deep_monitoring: bool,
    /// PM2 flags that have nothing to act on in pmx, accepted so PM2 command lines run: PM2.io
    /// monitoring (--no-pmx, --no-automation, --trace, --disable-trace, --v8,
    /// --event-loop-inspector), -x (pmx executes every program directly)
    #[arg(
        long = "no-pmx",
        short_alias = 'x',
        aliases = ["no-automation", "trace", "disable-trace", "v8", "event-loop-inspector",
            "execute-command"],
        action = clap::ArgAction::Count,
        hide = true
    )]
    pub pm2_io_flags: u8,
    /// Arguments passed to the app, after `--`
    #[arg(last = true)]
    pub args: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::{http_addr, instances};

    #[test]
    fn a_listener_port_alone_is_on_loopback() {
        assert_eq!(http_addr("9615").unwrap().to_string(), "127.0.0.1:9615");
        assert_eq!(http_addr("0.0.0.0:80").unwrap().to_string(), "0.0.0.0:80");
        assert_eq!(http_addr("[::1]:80").unwrap().to_string(), "[::1]:80");
        assert!(http_addr("localhost").unwrap_err().contains("IP:PORT"));
        assert!(http_addr("70000").is_err());
    }

    #[test]
    fn instances_count_cores_as_pm2_does() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        assert_eq!(instances("max"), Ok(cores));
        assert_eq!(instances("0"), Ok(cores));
        assert_eq!(instances("-1"), Ok(cores.saturating_sub(1).max(1)));
        assert_eq!(instances("3"), Ok(3));
        assert_eq!(instances("-100"), Ok(1), "clamped as PM2 does");
        assert!(instances("many").is_err());
    }
}
