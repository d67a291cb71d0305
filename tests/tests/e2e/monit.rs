//! `pmx monit` in a real terminal: tmux runs a shell, the test types into it (send-keys) and
//! reads the screen (capture-pane).

use pmx_tests::Within;
use std::process::Command;
use std::time::Duration;

use pmx_tests::{Home, fixture, on_path, tool_available, wait_for};

/// A tmux server of our own (its socket in the test's home), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(home: &Home) -> Tmux {
        let tmux = Tmux {
            socket: home.file("tmux"),
        };
        tmux.run(&[
            "new-session",
            "-d",
            "-x",
            "150",
            "-y",
            "45",
            "bash --norc --noprofile",
        ]);
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .env("TERM", "xterm-256color")
            .output_within();
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "0"];
        args.extend(keys);
        self.run(&args);
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "0"])
    }

    /// Waits until the screen shows every one of `texts`; returns it. A timeout shows the
    /// last screen.
    fn shows(&self, texts: &[&str]) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let screen = self.screen();
            if texts.iter().all(|t| screen.contains(t)) {
                return screen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for the screen to show {texts:?}; it shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn alternate_screen(&self) -> bool {
        self.run(&["display-message", "-p", "-t", "0", "#{alternate_on}"])
            .trim()
            == "1"
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

/// Whether the shell's terminal is back in cooked mode with echo (checked by the shell itself).
fn terminal_restored(home: &Home, tmux: &Tmux, name: &str) {
    let file = home.file(name);
    tmux.keys(&[&format!("stty -a > {file}"), "Enter"]);
    let modes = wait_for("stty's answer", Duration::from_secs(5), || {
        std::fs::read_to_string(&file)
            .ok()
            .filter(|s| !s.is_empty())
    });
    let words: Vec<&str> = modes.split_whitespace().collect();
    assert!(
        words.contains(&"icanon") && words.contains(&"echo"),
        "{modes}"
    );
    assert!(!tmux.alternate_screen(), "still on the alternate screen");
}

#[test]
fn monit_lists_the_apps_restarts_one_on_a_key_and_restores_the_terminal() {
    if !tool_available("tmux", on_path("tmux")) {
        return;
    }
    let home = Home::new();
    home.ok(&["start", &fixture("ticker.sh"), "--name", "tick"]);
    home.ok(&["start", &fixture("forever.sh"), "--name", "sleepy"]);
    let tick = home.wait_online("tick");
    let sleepy = home.wait_online("sleepy");
    let tmux = Tmux::start(&home);
    let monit = format!(
        "PMX_HOME={} {} monit",
        home.path().display(),
        pmx_tests::pmx_bin().display()
    );
    tmux.keys(&[&monit, "Enter"]);
    // The list, and the first app's metadata, history and live logs.
    let screen = tmux.shows(&["tick", "sleepy", "online", "logs tick", "tick "]);
    assert!(screen.contains("ticker.sh"), "metadata: {screen}");
    assert!(screen.contains("history tick"), "{screen}");
    assert!(tmux.alternate_screen());

    tmux.keys(&["Down"]);
    tmux.shows(&["logs sleepy", "started id=1"]);
    tmux.keys(&["r"]);
    tmux.shows(&["restart sleepy? (y/n)"]);
    assert_eq!(
        home.pid("sleepy"),
        sleepy,
        "nothing happens before the confirmation"
    );
    tmux.keys(&["y"]);
    let restarted = wait_for("sleepy restarted", Duration::from_secs(10), || {
        let p = home.proc("sleepy");
        let pid = p["pid"].as_u64().unwrap_or(0) as u32;
        (p["pm2_env"]["status"] == "online" && pid != sleepy && pid != 0).then_some(pid)
    });
    assert_eq!(home.pid("tick"), tick, "only the selected app restarts");
    tmux.shows(&["restart sleepy: done", &format!("spawned pid {restarted}")]);

    // It redraws at another size, and `q` leaves the terminal as it found it.
    tmux.run(&["resize-window", "-t", "0", "-x", "90", "-y", "30"]);
    tmux.shows(&["apps", "sleepy"]);
    tmux.keys(&["q"]);
    wait_for("monit to exit", Duration::from_secs(5), || {
        (!tmux.alternate_screen()).then_some(())
    });
    terminal_restored(&home, &tmux, "stty-after-q");

    // Ctrl-C too.
    tmux.keys(&[&monit, "Enter"]);
    tmux.shows(&["sleepy", "logs tick"]);
    tmux.keys(&["C-c"]);
    wait_for("monit to exit on Ctrl-C", Duration::from_secs(5), || {
        (!tmux.alternate_screen()).then_some(())
    });
    terminal_restored(&home, &tmux, "stty-after-ctrl-c");
}
