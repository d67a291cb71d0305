#!/usr/bin/env python3
"""The journal's figures (issue 3), for pmx:

    python3 bench/journal.py           # 100k and 1M events
    python3 bench/journal.py --quick   # 100k events only

- append rates (durable: a flush per event; group-committed: a flush per 1,000) and size on
  disk per 100,000 events, from `storage/examples/fill_journal.rs`;
- boot to the first spawn with 100 running apps and 100,000 events, with and without a
  snapshot (a clean shutdown leaves one; a crash may leave up to 10,000 events after it);
- `pmx history api --limit 100` with 1,000,000 events (median of 20).

Each run uses its own temporary home; every daemon and app started is stopped at the end.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IDLE = os.path.join(ROOT, "bench", "fixtures", "idle.sh")
PMX = os.path.join(ROOT, "target", "release", "pmx")
FILL = os.path.join(ROOT, "target", "release", "examples", "fill_journal")


def build():
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "pmx"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "pmx-storage", "--example",
                    "fill_journal"], cwd=ROOT, check=True)


def fill(home, apps, events, *flags):
    out = subprocess.run([FILL, os.path.join(home, "journal"), str(apps), str(events), IDLE,
                          *flags], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def env_for(home, **extra):
    return dict(os.environ, PMX_HOME=home, **extra)


def pmx(home, *args, **extra):
    return subprocess.run([PMX, *args], env=env_for(home, **extra), check=True,
                          capture_output=True, text=True).stdout


def boot_to_first_spawn(snapshot):
    home = tempfile.mkdtemp(prefix="pmx-bench-")
    try:
        flags = ["--running"] + (["--snapshot"] if snapshot else [])
        fill(home, 100, 100_000, *flags)
        t0 = time.time()
        daemon = subprocess.Popen([PMX, "daemon"], env=env_for(home), stderr=subprocess.DEVNULL)
        sock = os.path.join(home, "pmx.sock")
        while not os.path.exists(sock):
            time.sleep(0.001)
        ready = time.time()
        events = [json.loads(line) for line in pmx(home, "history", "all", "--json").splitlines()]
        # The filled journal has spawns of its own, from before this boot.
        spawned = min(e["at"] for e in events
                      if e["kind"]["type"] == "spawned" and e["at"] >= t0 * 1000)
        pmx(home, "kill")
        daemon.wait(timeout=30)
        return {"socket_ms": round((ready - t0) * 1000, 1),
                "first_spawn_ms": round(spawned - t0 * 1000, 1)}
    finally:
        shutil.rmtree(home, ignore_errors=True)


def history_limit_100(events):
    home = tempfile.mkdtemp(prefix="pmx-bench-")
    try:
        figures = fill(home, 100, events, "--snapshot")
        pmx(home, "ping", PMX_RETENTION_EVENTS="0")
        argv = [PMX, "history", "api", "--limit", "100"]
        samples = []
        for _ in range(20):
            t0 = time.perf_counter()
            subprocess.run(argv, env=env_for(home), check=True, stdout=subprocess.DEVNULL)
            samples.append((time.perf_counter() - t0) * 1000)
        pmx(home, "kill")
        return figures, round(statistics.median(samples), 2)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="100k events only")
    args = ap.parse_args()
    build()
    results = {}
    figures, results["history_limit100_ms_100k"] = history_limit_100(100_000)
    results.update({k: v for k, v in figures.items() if k != "journal_bytes"})
    if not args.quick:
        figures, results["history_limit100_ms_1m"] = history_limit_100(1_000_000)
        results["journal_bytes_1m"] = figures["journal_bytes"]
    results["boot_with_snapshot"] = boot_to_first_spawn(snapshot=True)
    results["boot_without_snapshot"] = boot_to_first_spawn(snapshot=False)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
