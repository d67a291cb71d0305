//! Waiting on a child process with a deadline: a command or helper that hangs fails its test
//! (and is SIGKILLed by its pid) instead of hanging the suite.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How long any command a test runs may take.
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(120);

/// `cmd.output()`, failing the test when it has not finished by `COMMAND_DEADLINE`. As with
/// `output`, the command's stdin is empty (`output_of` takes a child fed otherwise).
pub fn output_within(cmd: &mut Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a command");
    output_of(child, &format!("{cmd:?}"))
}

/// `child.wait_with_output()` for a child spawned with piped stdout and stderr, within
/// `COMMAND_DEADLINE`.
pub fn output_of(mut child: Child, what: &str) -> Output {
    let stdout = read_all(child.stdout.take());
    let stderr = read_all(child.stderr.take());
    let status = wait_within(&mut child, what);
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// `child.wait()`, SIGKILLing the child and failing the test after `COMMAND_DEADLINE`.
pub fn wait_within(child: &mut Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + COMMAND_DEADLINE;
    loop {
        if let Some(status) = child.try_wait().expect("wait for a child") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {COMMAND_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn read_all(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// `Command::output` and `Command::status` with the deadline.
pub trait Within {
    fn output_within(&mut self) -> Output;
    fn status_within(&mut self) -> ExitStatus;
}

impl Within for Command {
    fn output_within(&mut self) -> Output {
        output_within(self)
    }

    fn status_within(&mut self) -> ExitStatus {
        let mut child = self.spawn().expect("spawn a command");
        wait_within(&mut child, &format!("{self:?}"))
    }
}
