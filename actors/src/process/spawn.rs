//! Turns an `AppSpec` into a command line (checking the file system, so bad input is refused
//! before anything is registered) and spawns one instance's process.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use pmx_core::spec::{AppSpec, Interpreter};
use pmx_core::state::Exit;
use rustix::process::{Pid, PidfdFlags, WaitId, WaitIdOptions, WaitOptions, pidfd_open};
use tokio::io::unix::AsyncFd;

/// Resolves the argv the daemon runs for `spec`. Errors are one line for the user.
pub fn resolve(spec: &AppSpec) -> Result<Vec<String>, String> {
    let cwd = Path::new(&spec.cwd);
    if !cwd.is_dir() {
        return Err(format!("cwd `{}` is not a directory", spec.cwd));
    }
    let script = spec.script.trim();
    let as_file = cwd.join(script);
    if spec.is_shell_command() && !as_file.is_file() {
        return Ok(spec.shell_argv());
    }
    let path = find_script(script, cwd)?;
    let path_str = path.to_string_lossy().into_owned();
    let interpreter = match &spec.interpreter {
        Interpreter::None => None,
        Interpreter::Program(program) => Some(find_program(program).ok_or_else(|| {
            format!("unknown interpreter `{program}`: not found in PATH")
        })?),
        Interpreter::Auto => match Interpreter::for_extension(&path_str) {
            Some(program) => Some(find_program(program).ok_or_else(|| {
                format!(
                    "interpreter `{program}` for `{script}` not found in PATH; install it or pass --interpreter"
                )
            })?),
            None => None,
        },
    };
    let mut argv = Vec::new();
    if let Some(interpreter) = interpreter {
        argv.push(interpreter.to_string_lossy().into_owned());
        argv.extend(spec.interpreter_args.iter().flatten().cloned());
    }
    argv.push(path_str);
    argv.extend(spec.args.iter().cloned());
    Ok(argv)
}

fn find_script(script: &str, cwd: &Path) -> Result<PathBuf, String> {
    let candidate = cwd.join(script);
    if candidate.is_dir() {
        return Err(format!("script `{script}` is a directory, not a file"));
    }
    if candidate.exists() {
        return Ok(candidate);
    }
    if !script.contains('/')
        && let Some(found) = find_program(script)
    {
        return Ok(found);
    }
    Err(format!("script not found: `{}`", candidate.display()))
}

/// A program by absolute path, or searched in PATH.
fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// What the daemon needs to know about one instance to spawn it.
pub struct SpawnRequest<'a> {
    pub spec: &'a AppSpec,
    /// The command line, from `resolve`.
    pub argv: &'a [String],
    pub id: u32,
    /// Marks every process of this run (inherited env), to find descendants that escaped
    /// the process group.
    pub token: &'a str,
    /// Variables beyond the spec's (instance number, sockets, readiness).
    pub env: Vec<(String, String)>,
    /// Fds the process gets at 3, 4, … (socket activation); they stay open meanwhile.
    pub fds: Vec<std::os::fd::RawFd>,
    /// Capture stdout (through a pipe to the log thread), else discard it.
    pub capture_out: bool,
    /// Capture stderr, else discard it.
    pub capture_err: bool,
}

/// A live process and the handles to signal it safely.
pub struct Spawned {
    pub pid: u32,
    /// Signals go through the pidfd, never a bare pid that may have been reused; its end is
    /// waited for through it too (`exit_of`).
    pub pidfd: Option<Arc<OwnedFd>>,
    /// The read ends of the captured streams, for the log thread.
    pub out: Option<OwnedFd>,
    pub err: Option<OwnedFd>,
}

/// Pipe capacity asked for captured streams: a burst of output fits without blocking the app
/// while the log thread catches up (1 MiB is the unprivileged maximum).
const PIPE_SIZE: usize = 1024 * 1024;

/// Why a spawn failed. `transient` when the machine was short of something that comes back
/// (descriptors, processes, memory): the instance tries again later instead of giving up.
#[derive(Debug)]
pub struct SpawnError {
    pub message: String,
    pub transient: bool,
}

impl From<String> for SpawnError {
    fn from(message: String) -> Self {
        Self {
            message,
            transient: false,
        }
    }
}

impl SpawnError {
    /// `message` (which names `error`), transient if `error` is a shortage.
    pub fn os(message: String, error: &std::io::Error) -> Self {
        let transient = matches!(
            error.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::EAGAIN | libc::ENOMEM | libc::ENOBUFS)
        );
        Self { message, transient }
    }
}

/// A pipe for one stream: the app's end for `Stdio`, the daemon's end to read.
fn capture(wanted: bool) -> Result<(Stdio, Option<OwnedFd>), SpawnError> {
    if !wanted {
        return Ok((Stdio::null(), None));
    }
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| {
        let e = std::io::Error::from(e);
        SpawnError::os(
            format!("cannot create a pipe for the app's output: {e}"),
            &e,
        )
    })?;
    // Best effort: the default 64 KiB still works, with more blocking under floods.
    let _ = rustix::pipe::fcntl_setpipe_size(&read, PIPE_SIZE);
    Ok((Stdio::from(write), Some(read)))
}

/// The env var carrying the run token.
pub const TOKEN_VAR: &str = "PMX_RUN_TOKEN";

/// A command ready to run: everything the actor decides is in it, and what remains is the
/// fork and exec, which `run` does (on the spawner thread).
pub struct Prepared {
    cmd: Command,
    program: String,
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
}

/// Builds the command of `req`: its pipes, environment and descriptors.
pub fn prepare(req: &SpawnRequest<'_>) -> Result<Prepared, SpawnError> {
    let argv = req.argv;
    let (out, out_read) = capture(req.capture_out)?;
    let (err, err_read) = capture(req.capture_err)?;
    let Some((program, args)) = argv.split_first() else {
        return Err(SpawnError::from("empty command line".to_string()));
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(&req.spec.cwd)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    let own = [
        ("PMX_ID", req.id.to_string()),
        ("PMX_NAME", req.spec.name.clone()),
        (TOKEN_VAR, req.token.to_string()),
    ];
    if req.fds.is_empty() {
        // As `AppSpec::run_env`, without copying the maps.
        cmd.envs(req.spec.base_env.iter())
            .envs(&req.spec.env)
            .envs(own)
            .envs(req.env.iter().map(|(k, v)| (k, v)));
    } else {
        // The hook execs by itself, with this environment.
        let mut env = req.spec.run_env();
        env.extend(own.map(|(k, v)| (k.to_string(), v)));
        env.extend(req.env.iter().cloned());
        let env: Vec<(String, String)> = env.into_iter().collect();
        super::activation::pass_fds(&mut cmd, argv, &env, req.fds.clone())?;
    }
    Ok(Prepared {
        cmd,
        program: program.clone(),
        out: out_read,
        err: err_read,
    })
}

impl Prepared {
    /// Forks and execs: returns once the child has exec'd (or failed to).
    pub fn run(self) -> Result<Spawned, SpawnError> {
        let Prepared {
            mut cmd,
            program,
            out,
            err,
        } = self;
        // The app inherits the user's umask: the daemon never changes its own (it gives
        // every file it creates an explicit mode instead).
        let child = cmd.spawn().map_err(|e| {
            let hint = match e.kind() {
                std::io::ErrorKind::NotFound => " (missing file or bad interpreter in its #! line)",
                std::io::ErrorKind::PermissionDenied => " (is it executable? try --interpreter)",
                _ => "",
            };
            SpawnError::os(format!("cannot execute `{program}`: {e}{hint}"), &e)
        })?;
        let pid = child.id();
        // Until it is waited for, the process stays a zombie: its pid cannot be reused, so
        // the pidfd opened now is this process's. std's `Child` reaps nothing when dropped.
        let pidfd = Pid::from_raw(pid as i32)
            .and_then(|p| pidfd_open(p, PidfdFlags::empty()).ok())
            .map(Arc::new);
        drop(child);
        // The app's ends of the pipes close with `cmd` here: the log thread sees the end of
        // a stream when the app and everything it spawned have closed theirs.
        drop(cmd);
        Ok(Spawned {
            pid,
            pidfd,
            out,
            err,
        })
    }
}

/// A pidfd shared with the `Run` that signals through it, for the runtime's poller.
struct Watched(Arc<OwnedFd>);

impl AsRawFd for Watched {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Waits for the end of process `pid`, a child of the daemon, and reaps it: through its
/// pidfd, which becomes readable when it exits (no thread, no SIGCHLD bookkeeping, no
/// second descriptor per app); on a kernel without pidfds, on a blocking thread.
pub async fn exit_of(pid: u32, pidfd: Option<Arc<OwnedFd>>) -> Exit {
    let unknown = Exit {
        code: None,
        signal: None,
    };
    let Some(pidfd) = pidfd else {
        let Some(p) = Pid::from_raw(pid as i32) else {
            return unknown;
        };
        let waited = tokio::task::spawn_blocking(move || {
            rustix::process::waitpid(Some(p), WaitOptions::empty())
        });
        return match waited.await {
            Ok(Ok(Some((_, status)))) => Exit {
                code: status.exit_status(),
                signal: status.terminating_signal(),
            },
            _ => unknown,
        };
    };
    // SAFETY: `Watched` holds the pidfd through an `Arc`: it stays open, the same
    // descriptor, for as long as the `AsyncFd` lives.
    let registered =
        unsafe { AsyncFd::register_with_interest(Watched(pidfd), tokio::io::Interest::READABLE) };
    let Ok(watched) = registered else {
        return unknown;
    };
    loop {
        let Ok(mut ready) = watched.readable().await else {
            return unknown;
        };
        let id = WaitId::PidFd(watched.get_ref().0.as_fd());
        match rustix::process::waitid(id, WaitIdOptions::EXITED | WaitIdOptions::NOHANG) {
            Ok(Some(status)) => {
                return Exit {
                    code: status.exit_status(),
                    signal: status.terminating_signal(),
                };
            }
            // Not ended yet (a wake-up with nothing to reap): wait again.
            Ok(None) => ready.clear_ready(),
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(script: &str) -> AppSpec {
        AppSpec {
            name: "t".into(),
            script: script.into(),
            cwd: "/".into(),
            ..AppSpec::default()
        }
    }

    #[test]
    fn shell_commands_run_through_sh() {
        let argv = resolve(&AppSpec {
            args: vec!["a b".into()],
            ..spec("python3 -m http.server")
        })
        .unwrap();
        assert_eq!(
            argv[..3],
            ["/bin/sh", "-c", "python3 -m http.server \"$@\""]
        );
        assert_eq!(argv[4], "a b");
        // Without args, a compound command stays valid shell.
        let argv = resolve(&spec("while true; do sleep 1; done")).unwrap();
        assert_eq!(argv[2], "while true; do sleep 1; done");
    }

    #[test]
    fn interpreter_by_extension_and_refusals() {
        let dir = tempfile_dir();
        let py = dir.join("w.py");
        std::fs::write(&py, "print(1)").unwrap();
        let argv = resolve(&spec(py.to_str().unwrap())).unwrap();
        assert!(argv[0].ends_with("python3"), "{argv:?}");
        assert!(
            resolve(&spec("/nonexistent/x.js"))
                .unwrap_err()
                .contains("not found")
        );
        assert!(
            resolve(&spec(dir.to_str().unwrap()))
                .unwrap_err()
                .contains("directory")
        );
        let bad = AppSpec {
            interpreter: Interpreter::Program("no-such-interp".into()),
            ..spec(py.to_str().unwrap())
        };
        assert!(resolve(&bad).unwrap_err().contains("unknown interpreter"));
        let none = AppSpec {
            interpreter: Interpreter::None,
            ..spec(py.to_str().unwrap())
        };
        assert_eq!(
            resolve(&none).unwrap(),
            vec![py.to_str().unwrap().to_string()]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    // `exit_of` is what reaps these children.
    #[allow(clippy::zombie_processes)]
    fn child(script: &str) -> (u32, Option<Arc<OwnedFd>>) {
        let child = Command::new("sh").args(["-c", script]).spawn().unwrap();
        let pid = child.id();
        let pidfd = pidfd_open(Pid::from_raw(pid as i32).unwrap(), PidfdFlags::empty()).unwrap();
        (pid, Some(Arc::new(pidfd)))
    }

    #[tokio::test]
    async fn the_end_of_a_child_is_read_from_its_pidfd() {
        let (pid, pidfd) = child("sleep 0.2; exit 3");
        let exit = exit_of(pid, pidfd).await;
        assert_eq!((exit.code, exit.signal), (Some(3), None));
        let (pid, pidfd) = child("sleep 30");
        let signalled = pidfd.clone();
        let exit = tokio::spawn(exit_of(pid, pidfd));
        rustix::process::pidfd_send_signal(
            signalled.as_deref().unwrap(),
            rustix::process::Signal::KILL,
        )
        .unwrap();
        let exit = exit.await.unwrap();
        assert_eq!((exit.code, exit.signal), (None, Some(9)));
        // Reaped: no zombie is left behind.
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists() || {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                !stat.contains(") Z ")
            }
        );
        // Without a pidfd (a kernel before 5.3), on a blocking thread.
        let (pid, _) = child("exit 5");
        let exit = exit_of(pid, None).await;
        assert_eq!((exit.code, exit.signal), (Some(5), None));
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pmx-spawn-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
