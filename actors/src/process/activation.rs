//! Passing sockets to an app with the systemd socket-activation protocol: the fds sit at
//! 3, 4, … in the child, `LISTEN_FDS` counts them and `LISTEN_PID` is the child's own pid.
//!
//! std's `Command` can neither place an fd at a given number nor know the child's pid before
//! it runs, so the child does both in a `pre_exec` hook and then calls `execve` itself with an
//! environment prepared before the fork. Only async-signal-safe calls happen after the fork:
//! `fcntl`, `dup2`, `getpid`, writes into a buffer allocated beforehand, `execve`.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;

use std::os::unix::process::CommandExt;
use std::process::Command;

/// The first fd passed (systemd's `SD_LISTEN_FDS_START`).
pub const FIRST_FD: RawFd = 3;
/// Where fds are moved first, so that placing one never overwrites another still to place.
const SCRATCH_FD: RawFd = 64;
/// Enough for every listening address an app may have plus the daemon's channel.
pub const MAX_FDS: usize = 32;

const PID_VAR: &[u8] = b"LISTEN_PID=";

/// Everything `execve` needs, built before the fork.
struct Exec {
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    /// `LISTEN_PID=` followed by room for any pid; filled in by the child.
    listen_pid: Vec<u8>,
    fds: Vec<RawFd>,
}

/// The raw pointer arrays `execve` takes; they point into `Exec`, which the hook owns.
struct Pointers {
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

// The pointers are only read in the forked child, which has one thread.
unsafe impl Send for Pointers {}
unsafe impl Sync for Pointers {}

/// Makes `cmd` run `argv` with `env` and `fds` at 3, 4, …, and `LISTEN_PID` set to its pid.
/// `fds` must stay open until the spawn returns.
pub fn pass_fds(
    cmd: &mut Command,
    argv: &[String],
    env: &[(String, String)],
    fds: Vec<RawFd>,
) -> Result<(), String> {
    if fds.len() > MAX_FDS {
        return Err(format!("at most {MAX_FDS} sockets can be passed to an app"));
    }
    let cstring = |s: &str| CString::new(s).map_err(|_| format!("NUL byte in `{s}`"));
    let argv: Vec<CString> = argv.iter().map(|a| cstring(a)).collect::<Result<_, _>>()?;
    let program = argv.first().cloned().ok_or("empty command line")?;
    let envp: Vec<CString> = env
        .iter()
        .filter(|(k, _)| k != "LISTEN_PID")
        .map(|(k, v)| cstring(&format!("{k}={v}")))
        .collect::<Result<_, _>>()?;
    let mut listen_pid = PID_VAR.to_vec();
    listen_pid.resize(PID_VAR.len() + 24, 0);
    let mut exec = Exec {
        program,
        argv,
        envp,
        listen_pid,
        fds,
    };
    let mut pointers = Pointers {
        argv: exec.argv.iter().map(|a| a.as_ptr()).collect(),
        envp: exec.envp.iter().map(|e| e.as_ptr()).collect(),
    };
    pointers.argv.push(std::ptr::null());
    pointers.envp.push(exec.listen_pid.as_ptr().cast());
    pointers.envp.push(std::ptr::null());
    // SAFETY: the hook runs in the forked child and only makes async-signal-safe calls; the
    // buffers it reads and writes were allocated before the fork and are owned by the hook.
    unsafe {
        cmd.pre_exec(move || {
            // Whole values are captured (not their fields), so the Send impls apply.
            let (exec, pointers) = (&mut exec, &pointers);
            place_fds(&exec.fds)?;
            write_pid(&mut exec.listen_pid, libc::getpid());
            libc::execve(
                exec.program.as_ptr(),
                pointers.argv.as_ptr(),
                pointers.envp.as_ptr(),
            );
            Err(io::Error::last_os_error())
        });
    }
    Ok(())
}

/// Puts `fds[i]` at `FIRST_FD + i`, without close-on-exec.
fn place_fds(fds: &[RawFd]) -> io::Result<()> {
    let mut scratch = [0 as RawFd; MAX_FDS];
    for (i, &fd) in fds.iter().enumerate() {
        // SAFETY: plain fcntl on an fd the parent keeps open across the spawn.
        let moved = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, SCRATCH_FD) };
        if moved < 0 {
            return Err(io::Error::last_os_error());
        }
        scratch[i] = moved;
    }
    for (i, &fd) in scratch[..fds.len()].iter().enumerate() {
        // dup2 onto a different number leaves the new fd without close-on-exec.
        // SAFETY: plain dup2 in the child.
        if unsafe { libc::dup2(fd, FIRST_FD + i as RawFd) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Writes `pid` in decimal after `LISTEN_PID=`, NUL-terminated, without allocating.
fn write_pid(buffer: &mut [u8], pid: libc::pid_t) {
    let mut digits = [0u8; 20];
    let mut n = pid.unsigned_abs() as u64;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = PID_VAR.len();
    for i in 0..len {
        buffer[start + i] = digits[len - 1 - i];
    }
    buffer[start + len] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_are_written_in_place() {
        let mut buffer = PID_VAR.to_vec();
        buffer.resize(PID_VAR.len() + 24, 0xff);
        write_pid(&mut buffer, 4_194_304);
        let text = std::ffi::CStr::from_bytes_until_nul(&buffer).unwrap();
        assert_eq!(text.to_str().unwrap(), "LISTEN_PID=4194304");
        write_pid(&mut buffer, 7);
        let text = std::ffi::CStr::from_bytes_until_nul(&buffer).unwrap();
        assert_eq!(text.to_str().unwrap(), "LISTEN_PID=7");
    }

    #[test]
    fn the_child_finds_the_fds_and_its_own_pid() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let (c, _d) = std::os::unix::net::UnixStream::pair().unwrap();
        use std::os::fd::AsRawFd;
        let argv = vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            "echo $LISTEN_FDS $LISTEN_PID $$ $X; ls /proc/self/fd/ | tr '\\n' ' '".to_string(),
        ];
        let env = vec![
            ("LISTEN_FDS".to_string(), "2".to_string()),
            ("X".to_string(), "y".to_string()),
        ];
        let mut cmd = Command::new(&argv[0]);
        cmd.stdout(std::process::Stdio::piped());
        pass_fds(&mut cmd, &argv, &env, vec![a.as_raw_fd(), c.as_raw_fd()]).unwrap();
        let out = cmd.output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines();
        let first: Vec<&str> = lines.next().unwrap().split(' ').collect();
        assert_eq!(first[0], "2");
        assert_eq!(first[1], first[2], "LISTEN_PID is the child's pid: {text}");
        assert_eq!(first[3], "y");
        let fds = lines.next().unwrap();
        assert!(fds.contains(" 3 ") && fds.contains(" 4 "), "{fds}");
    }
}
