#!/usr/bin/env python3
"""The pmx benchmark harness: the figures of issue 2, for pmx and, side by side, for PM2.

    python3 bench/run.py            # pmx only (builds target/release/pmx first)
    python3 bench/run.py --pm2      # also PM2, installed with npm into a temporary prefix
    python3 bench/run.py --quick    # 5 s instead of 20 s of idle CPU

Every manager gets its own temporary home; every daemon and app started here is stopped
(`kill`) at the end. Times are wall-clock medians; CPU time comes from /proc/PID/stat.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "bench", "fixtures")
IDLE = os.path.join(FIXTURES, "idle.sh")
CRASH = os.path.join(FIXTURES, "crash_stamp.sh")
TICKS = os.sysconf("SC_CLK_TCK")


def spawn_wait(argv, env):
    """Runs argv to completion with posix_spawn (less harness overhead than subprocess)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        pid = os.posix_spawn(argv[0], argv, env, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)])
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)
    finally:
        os.close(devnull)


def timed(argv, env, runs):
    """Median wall time of `runs` runs, in ms."""
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        spawn_wait(argv, env)
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def proc_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def proc_cpu_ms(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / TICKS


def cpu_percent(pid, seconds):
    """The CPU `pid` (all its threads) used over the next `seconds`, in % of one core."""
    before = proc_cpu_ms(pid)
    time.sleep(seconds)
    return (proc_cpu_ms(pid) - before) / (seconds * 1000) * 100


def binary_and_quick(ap):
    """Adds `--quick` and `--binary` (default: target/release/pmx, built first) to `ap`."""
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "pmx"))
    args = ap.parse_args()
    if args.binary.endswith("release/pmx"):
        subprocess.run(["cargo", "build", "--release", "-p", "pmx"], cwd=ROOT, check=True)
    return args


class Manager:
    """A process manager driven through its CLI."""

    def __init__(self, name, binary, home_var):
        self.name = name
        self.binary = binary
        self.home = tempfile.mkdtemp(prefix=f"{name}b", dir="/tmp")
        self.env = dict(os.environ, **{home_var: self.home})

    def run(self, *args, check=True):
        out = subprocess.run([self.binary, *args], env=self.env, capture_output=True, text=True)
        if check and out.returncode != 0:
            raise RuntimeError(f"{self.name} {args}: {out.stderr}")
        return out.stdout

    def jlist(self):
        return json.loads(self.run("jlist") or "[]")

    def wait_online(self, count, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if sum(p["pm2_env"]["status"] == "online" for p in self.jlist()) >= count:
                return
            time.sleep(0.005)
        raise RuntimeError(f"{self.name}: {count} apps not online in {timeout}s")

    def start(self, script, name, *extra, env=None):
        args = [self.binary, "start", script, "--name", name, *extra]
        subprocess.run(args, env=dict(self.env, **(env or {})), capture_output=True, check=True)

    def daemon_pid(self):
        with open(os.path.join(self.home, self.pid_file)) as f:
            return int(f.read().strip())

    def close(self):
        self.run("kill", check=False)
        shutil.rmtree(self.home, ignore_errors=True)


class Pmx(Manager):
    pid_file = "pmx.pid"

    def __init__(self, binary):
        super().__init__("pmx", binary, "PMX_HOME")


class Pm2(Manager):
    pid_file = "pm2.pid"

    def __init__(self, binary):
        super().__init__("pm2", binary, "PM2_HOME")


def start_many(m, count, prefix):
    for i in range(count):
        m.start(IDLE, f"{prefix}{i}")


def crash_gaps(m, samples=20):
    stamp = os.path.join(m.home, "stamps")
    m.start(CRASH, "crasher", "--max-restarts", "1000", "--restart-delay", "0", env={"STAMP_FILE": stamp})
    deadline = time.time() + 60
    lines = []
    while time.time() < deadline:
        with open(stamp) if os.path.exists(stamp) else open(os.devnull) as f:
            lines = f.read().split("\n")
        if sum(l.startswith("s ") for l in lines) > samples + 1:
            break
        time.sleep(0.05)
    m.run("delete", "crasher", check=False)
    return gaps_of(lines, samples)


def gaps_of(lines, samples):
    """Median of the first `samples` gaps between an `e` (exit) stamp and the next `s` (start)."""
    gaps, last_exit = [], None
    for line in lines:
        if line.startswith("e "):
            last_exit = float(line[2:])
        elif line.startswith("s ") and last_exit is not None:
            gaps.append((float(line[2:]) - last_exit) * 1000)
    return statistics.median(gaps[:samples])


def measure(m, idle_seconds):
    r = {}
    m.run("ping")
    time.sleep(1)
    pid = m.daemon_pid()
    r["rss_idle_mib"] = proc_rss_kib(pid) / 1024

    start_many(m, 10, "j")
    m.wait_online(10)
    r["jlist_ms"] = timed([m.binary, "jlist"], m.env, 30)
    r["list_ms"] = timed([m.binary, "list"], m.env, 30)
    m.run("delete", "all")

    t0 = time.perf_counter()
    start_many(m, 50, "s")
    m.wait_online(50)
    r["start50_s"] = time.perf_counter() - t0
    time.sleep(1)
    r["rss_50_mib"] = proc_rss_kib(pid) / 1024
    cpu0 = proc_cpu_ms(pid)
    time.sleep(idle_seconds)
    r[f"idle_cpu_ms_{idle_seconds}s"] = proc_cpu_ms(pid) - cpu0
    t0 = time.perf_counter()
    m.run("delete", "all")
    r["delete_all_50_s"] = time.perf_counter() - t0

    start_many(m, 100, "h")
    m.wait_online(100)
    time.sleep(1)
    r["rss_100_mib"] = proc_rss_kib(pid) / 1024
    m.run("delete", "all")

    r["crash_respawn_ms"] = crash_gaps(m)
    return r


def install_pm2():
    prefix = tempfile.mkdtemp(prefix="pm2prefix", dir="/tmp")
    subprocess.run(["npm", "install", "-g", "--prefix", prefix, "pm2"], check=True, capture_output=True)
    return os.path.join(prefix, "bin", "pm2"), prefix


def managers_for(binary, pm2):
    """pmx at `binary`, and PM2 (installed into a temporary prefix) when `pm2`; with the
    prefixes to remove afterwards."""
    managers, cleanup = [Pmx(binary)], []
    if pm2:
        pm2_binary, prefix = install_pm2()
        managers.append(Pm2(pm2_binary))
        cleanup.append(prefix)
    return managers, cleanup


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pm2", action="store_true", help="also measure PM2 (npm install into a temp prefix)")
    ap.add_argument("--quick", action="store_true", help="5 s of idle CPU instead of 20 s")
    ap.add_argument("--pmx", default=os.path.join(ROOT, "target", "release", "pmx"))
    args = ap.parse_args()
    idle = 5 if args.quick else 20
    if args.pmx.endswith("release/pmx"):
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "pmx"], cwd=ROOT, check=True)

    managers = [Pmx(args.pmx)]
    cleanup = []
    if args.pm2:
        binary, prefix = install_pm2()
        managers.append(Pm2(binary))
        cleanup.append(prefix)
    floor = timed(["/bin/true"], dict(os.environ), 30)
    results = {}
    try:
        for m in managers:
            print(f"measuring {m.name} ...", file=sys.stderr)
            results[m.name] = measure(m, idle)
    finally:
        for m in managers:
            m.close()
        for c in cleanup:
            shutil.rmtree(c, ignore_errors=True)

    print(f"exec floor (/bin/true): {floor:.2f} ms")
    print_table(results)


def print_table(results, width=22):
    """One row per figure, a column per manager, and PM2's ratio to pmx when both ran."""
    header = f"{'figure':<{width}}" + "".join(f"{n:>12}" for n in results)
    if "pm2" in results:
        header += f"{'pm2/pmx':>10}"
    print(header)
    for k in results["pmx"]:
        # A figure one manager has no meaning for (pmx's own floor ratios) shows "-".
        cells = (results[n].get(k) for n in results)
        row = f"{k:<{width}}" + "".join(f"{'-':>12}" if v is None else f"{v:>12.2f}" for v in cells)
        if "pm2" in results and results["pmx"][k] and results["pm2"].get(k) is not None:
            row += f"{results['pm2'][k] / results['pmx'][k]:>9.1f}x"
        print(row)


if __name__ == "__main__":
    main()
