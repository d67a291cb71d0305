//! Turns an `AppSpec` into a command line (checking the file system, so bad input is refused
//! before anything is registered) and spawns one instance's process.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use pmx_core::spec::{AppSpec, Interpreter};
use rustix::process::{Pid, PidfdFlags, pidfd_open};
use tokio::process::{Child, Command};

/// Resolves the argv the daemon runs for `spec`. Errors are one line for the user.
pub fn resolve(spec: &AppSpec) -> Result<Vec<String>, String> {
    let cwd = Path::new(&spec.cwd);
    if !cwd.is_dir() {
        return Err(format!("cwd `{}` is not a directory", spec.cwd));
    }
    let script = spec.script.trim();
    let as_file = cwd.join(script);
    if spec.is_shell_command() && !as_file.is_file() {
        // `"$@"` passes the app's args through without re-splitting them; only when there
        // are some, since it breaks a compound command (`while ...; done "$@"`).
        let command = if spec.args.is_empty() {
            script.to_string()
        } else {
            format!("{script} \"$@\"")
        };
        let mut argv = vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            command,
            "sh".to_string(),
        ];
        argv.extend(spec.args.iter().cloned());
        return Ok(argv);
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
        argv.extend(spec.interpreter_args.iter().cloned());
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
    pub child: Child,
    pub pid: u32,
    /// Signals go through the pidfd, never a bare pid that may have been reused.
    pub pidfd: Option<OwnedFd>,
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

pub fn spawn(req: &SpawnRequest<'_>) -> Result<Spawned, SpawnError> {
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
        .process_group(0)
        .kill_on_drop(false);
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
    // The app inherits the user's umask: the daemon never changes its own (it gives every
    // file it creates an explicit mode instead).
    let spawned = cmd.spawn();
    let child = spawned.map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::NotFound => " (missing file or bad interpreter in its #! line)",
            std::io::ErrorKind::PermissionDenied => " (is it executable? try --interpreter)",
            _ => "",
        };
        SpawnError::os(format!("cannot execute `{program}`: {e}{hint}"), &e)
    })?;
    let pid = child.id().ok_or_else(|| {
        SpawnError::from("the process exited before its pid was read".to_string())
    })?;
    let pidfd = Pid::from_raw(pid as i32).and_then(|p| pidfd_open(p, PidfdFlags::empty()).ok());
    // The app's ends of the pipes close with `cmd` here: the log thread sees the end of a
    // stream when the app and everything it spawned have closed theirs.
    drop(cmd);
    Ok(Spawned {
        child,
        pid,
        pidfd,
        out: out_read,
        err: err_read,
    })
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

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pmx-spawn-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
