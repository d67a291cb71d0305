#!/usr/bin/env python3
"""Faults: what floods, history load and `kill -9` cost pmx (issue 16), PM2 beside it where
PM2 has the same thing.

    python3 bench/faults.py [--pm2] [--quick]

- daemon RSS idle, and its peak while one app writes 200 MB without a newline to stdout
  (pmx and PM2), and while a `--wait-ready` app writes 300 MB without a newline to its
  readiness channel (pmx only: PM2 has no such channel);
- `pmx ping` latency (p50, p99 of 200) while three clients scan a 200,000-event journal with
  `history all --since 1s` (pmx only: PM2 keeps no history);
- events lost per `kill -9` of the daemon during a crash loop (10 kills): runs missing from
  the journal, and how long before its kill the oldest of them began, against the 500 ms the
  README states.

Every daemon and app started here is stopped at the end.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402
import journal  # noqa: E402  (fill_journal)
import scale  # noqa: E402  (alive)

FLOOD_BYTES = 200_000_000


def peak_rss_while(m, done, seconds=60):
    """The daemon's peak RSS (KiB) until `done()` or `seconds`."""
    pid, peak = m.daemon_pid(), 0
    deadline = time.time() + seconds
    while time.time() < deadline and not done():
        peak = max(peak, run.proc_rss_kib(pid))
        time.sleep(0.05)
    return max(peak, run.proc_rss_kib(pid))


def stdout_flood(m):
    """Idle RSS, then the peak while an app writes FLOOD_BYTES without a newline."""
    m.run("ping")
    idle = run.proc_rss_kib(m.daemon_pid())
    marker = os.path.join(m.home, "flood.done")
    script = os.path.join(m.home, "flood.sh")
    with open(script, "w") as f:
        f.write(f"#!/bin/sh\nhead -c {FLOOD_BYTES} /dev/zero | tr '\\0' x\ntouch {marker}\nsleep 600\n")
    os.chmod(script, 0o755)
    m.start(script, "flat")
    peak = peak_rss_while(m, lambda: os.path.exists(marker), seconds=120)
    m.run("delete", "flat", check=False)
    return idle, peak


def channel_flood(m):
    marker = os.path.join(m.home, "chan.done")
    args = [m.binary, "start",
            f"sh -c 'head -c 300000000 /dev/zero >&$PMX_CHANNEL_FD; touch {marker}; sleep 600'",
            "--name", "chan", "--wait-ready", "--listen-timeout", "120000"]
    starter = subprocess.Popen(args, env=m.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = peak_rss_while(m, lambda: os.path.exists(marker), seconds=120)
    starter.kill()
    starter.wait()
    m.run("delete", "chan", check=False)
    return peak


def ping_under_history_load(binary, quick):
    home = tempfile.mkdtemp(prefix="pmxf", dir="/tmp")
    try:
        journal.fill(home, 10, 50_000 if quick else 200_000, "--running", "--snapshot")
        env = dict(os.environ, PMX_HOME=home)
        subprocess.run([binary, "ping"], env=env, check=True, capture_output=True)
        stop = threading.Event()

        def hammer():
            while not stop.is_set():
                # The clients themselves run at nice 10: the load measured is the daemon's
                # scans, not three processes spawned in a loop competing with `pmx ping`.
                subprocess.run(["nice", "-n", "10", binary, "history", "all", "--since", "1s",
                                "--json"], env=env, capture_output=True)

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(1)
        pings = []
        for _ in range(200):
            t0 = time.perf_counter()
            run.spawn_wait([binary, "ping"], env)
            pings.append((time.perf_counter() - t0) * 1000)
        stop.set()
        for t in threads:
            t.join()
        idle = [run.timed([binary, "ping"], env, 1) for _ in range(50)]
        subprocess.run([binary, "kill"], env=env, capture_output=True)
        pings.sort()
        return {
            "ping idle p50 ms": statistics.median(idle),
            "ping loaded p50 ms": pings[len(pings) // 2],
            "ping loaded p99 ms": pings[int(len(pings) * 0.99) - 1],
        }
    finally:
        shutil.rmtree(home, ignore_errors=True)


def kill9_losses(binary, kills=10):
    home = tempfile.mkdtemp(prefix="pmxk", dir="/tmp")
    env = dict(os.environ, PMX_HOME=home)
    runs = os.path.join(home, "runs")
    script = os.path.join(home, "crash.sh")
    with open(script, "w") as f:
        f.write('#!/bin/bash\necho "$$ $(date +%s%N)" >> "$1"\nsleep 0.05\nexit 1\n')
    os.chmod(script, 0o755)
    pmx = lambda *a: subprocess.run([binary, *a], env=env, capture_output=True, text=True)  # noqa: E731
    try:
        pmx("start", script, "--name", "crash", "--min-uptime", "0", "--max-restarts", "1000000",
            "--", runs)
        stamps = []
        for i in range(kills):
            time.sleep(0.4 + (i * 0.137) % 0.5)
            with open(os.path.join(home, "pmx.pid")) as f:
                pid = int(f.read())
            stamps.append(time.time_ns())
            os.kill(pid, 9)
            while scale.alive(pid):
                time.sleep(0.005)
            pmx("ping")
        time.sleep(0.5)
        pmx("stop", "crash")
        events = [json.loads(line) for line in pmx("history", "crash", "--json").stdout.splitlines()]
        spawned = {e["kind"].get("pid") for e in events if e["kind"]["type"] == "spawned"}
        lost, oldest = 0, 0.0
        for line in open(runs):
            pid, at = map(int, line.split())
            if pid in spawned:
                continue
            lost += 1
            after = [k for k in stamps if k >= at - 100_000_000]
            if after:
                oldest = max(oldest, (after[0] - at) / 1e6)
        pmx("kill")
        return {"runs lost per kill -9": lost / kills, "oldest lost run ms before kill": oldest}
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pm2", action="store_true")
    args = run.binary_and_quick(ap)
    journal.build()
    managers, cleanup = run.managers_for(args.binary, args.pm2)
    results = {}
    try:
        for m in managers:
            print(f"flooding {m.name} ...", file=sys.stderr)
            idle, peak = stdout_flood(m)
            r = {"RSS idle MiB": idle / 1024, "RSS stdout flood MiB": peak / 1024}
            if m.name == "pmx":
                r["RSS channel flood MiB"] = channel_flood(m) / 1024
            results[m.name] = r
    finally:
        for m in managers:
            m.close()
        for c in cleanup:
            shutil.rmtree(c, ignore_errors=True)
    for name, r in results.items():
        print(f"{name}: " + ", ".join(f"{k} {v:.1f}" for k, v in r.items()))
    print("pmx history load:", ping_under_history_load(args.binary, args.quick))
    print("pmx kill -9:", kill9_losses(args.binary))


if __name__ == "__main__":
    main()
