//! The sampler's figures against what the kernel says, for a Node app (several threads: they
//! must be folded into their process, never counted as processes), and `max_memory_restart`
//! on such an app. Daemons sample every 100 ms here.

use std::time::{Duration, Instant};

use pmx_tests::{Home, alive, fixture, parent_of, wait_for};

/// VmRSS of `pid`, in bytes.
fn vm_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// User + system CPU of `pid` (all its threads), in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

/// Starts the threaded Node fixture as `name` and waits until its workers run.
fn start_threads(home: &Home, name: &str, extra: &[&str]) -> u32 {
    let script = fixture("threads.js");
    let mut args = vec!["start", script.as_str(), "--name", name];
    args.extend_from_slice(extra);
    home.ok(&args);
    let pid = home.wait_online(name);
    home.wait_output(name, "ready");
    assert!(threads(pid) >= 4, "the fixture runs several threads");
    pid
}

#[test]
fn a_node_app_reads_its_own_memory_not_once_per_thread() {
    let home = Home::fast_sampling();
    let pid = start_threads(&home, "node", &[]);
    // The app settles after start; a figure within 10 % of VmRSS read at the same moment.
    let (reported, actual) = wait_for(
        "memory within 10 % of VmRSS",
        Duration::from_secs(10),
        || {
            let monit = home.proc("node")["monit"].clone();
            let reported = monit["memory"].as_u64()?;
            let tree = monit["tree_memory"].as_u64()?;
            let actual = vm_rss(pid);
            let close = |v: u64| (v as f64 - actual as f64).abs() <= actual as f64 * 0.10;
            (monit["processes"] == 1 && close(reported) && close(tree))
                .then_some((reported, actual))
        },
    );
    assert!(reported > 0 && actual > 0);
}

#[test]
fn a_busy_multithreaded_app_reads_the_cpu_it_uses() {
    let home = Home::fast_sampling();
    let pid = start_threads(&home, "busy", &["--env", "BUSY=1"]);
    // Over the same 6 s: the mean of the figures the daemon shows, against the CPU time the
    // kernel counted for the process (all threads). Each figure covers one 100 ms sample: on
    // a loaded machine, where the app's share swings, 3 s of them strayed more than 30 %.
    let (t0, c0) = (Instant::now(), cpu_seconds(pid));
    let mut shown = Vec::new();
    while t0.elapsed() < Duration::from_secs(6) {
        std::thread::sleep(Duration::from_millis(150));
        let monit = home.proc("busy")["monit"].clone();
        shown.push(monit["tree_cpu"].as_f64().unwrap_or(0.0));
    }
    let used = (cpu_seconds(pid) - c0) / t0.elapsed().as_secs_f64() * 100.0;
    let mean = shown.iter().sum::<f64>() / shown.len() as f64;
    assert!(used > 30.0, "the fixture spins: {used:.0} %");
    assert!(
        (mean - used).abs() <= used * 0.30,
        "daemon shows {mean:.0} % on average, the kernel counted {used:.0} %: {shown:?}"
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    assert!(
        shown.iter().all(|&c| c <= cores * 100.0 + 25.0),
        "no figure above what the machine has: {shown:?}"
    );
}

#[test]
fn max_memory_restart_at_three_times_a_node_apps_memory_never_fires() {
    let home = Home::fast_sampling();
    let probe = start_threads(&home, "probe", &[]);
    let limit = format!("{}K", vm_rss(probe) * 3 / 1024);
    home.ok(&["delete", "probe"]);
    let pid = start_threads(&home, "limited", &["--max-memory-restart", &limit]);
    // 30 samples at 100 ms: a count per thread would have crossed the limit at the first.
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        let p = home.proc("limited");
        assert_eq!(p["pid"], pid, "restarted under a limit of {limit}");
        assert_eq!(p["pm2_env"]["restart_time"], 0);
        std::thread::sleep(Duration::from_millis(100));
    }
    let history = home.ok(&["history", "limited"]);
    assert!(!history.contains("max_memory_restart"), "{history}");
    assert!(
        home.proc("limited")["monit"]["processes"] == 1,
        "sampled: {}",
        home.proc("limited")["monit"]
    );
}

#[test]
fn an_orphan_the_daemon_adopted_counts_in_its_apps_tree_and_dies_with_it() {
    let home = Home::fast_sampling();
    home.ok(&["start", &fixture("orphan.sh"), "--name", "orphan"]);
    let root = home.wait_online("orphan");
    let daemon = home.daemon_pid().expect("pid file");
    let orphan = wait_for("the adopted orphan", Duration::from_secs(10), || {
        let mine = home.processes_of("1000");
        mine.into_iter().find(|&p| parent_of(p) == Some(daemon))
    });
    // The daemon lists its children for orphans every 5 samples (500 ms here).
    let monit = wait_for("the orphan in the tree", Duration::from_secs(10), || {
        let monit = home.proc("orphan")["monit"].clone();
        (monit["processes"] == 2).then_some(monit)
    });
    assert!(
        monit["tree_memory"].as_u64() > monit["memory"].as_u64(),
        "{monit}"
    );
    home.ok(&["delete", "orphan"]);
    pmx_tests::wait_gone(orphan);
    assert!(!alive(root));
}
