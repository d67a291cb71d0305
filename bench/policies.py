#!/usr/bin/env python3
"""Issue 6's figures: what watching costs and how fast a threshold acts.

    python3 bench/policies.py            # builds target/release/pmx first
    python3 bench/policies.py --quick    # shorter CPU window, fewer crossings

1. Daemon CPU with 50 idle apps sampled every second (target: <= 1 % of one core).
2. Latency from an app's memory crossing `max_memory_restart` to the restart being issued
   (the stop signal journaled), at a 1 s and a 100 ms sampling interval (target: <= one
   interval). The fixture stamps the moment before it takes the memory that crosses the
   limit (a few ms of allocation are counted in); the journal stamps the restart.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the harness's Manager, fixtures and /proc readers)

GROW = os.path.join(run.FIXTURES, "grow_stamp.py")


def daemon_cpu(binary, apps, seconds):
    m = run.Pmx(binary)
    try:
        run.start_many(m, apps, "idle")
        m.wait_online(apps)
        time.sleep(2)  # the first samples, and start-up work, are done
        return run.cpu_percent(m.daemon_pid(), seconds)
    finally:
        m.close()


def crossing_latency(binary, interval, crossings):
    m = run.Pmx(binary)
    m.env["PMX_SAMPLE_INTERVAL"] = interval
    stamp = tempfile.mktemp(prefix="pmxstamp", dir="/tmp")
    try:
        m.start(GROW, "grow", "--max-memory-restart", "50M", env={"STAMP": stamp})
        deadline = time.time() + crossings * 4 + 20
        while time.time() < deadline:
            events = [json.loads(line) for line in m.run("history", "grow", "--json").splitlines()]
            restarts = [
                e["at"]
                for e in events
                if e["kind"]["type"] == "signalled"
                and e["cause"].get("rule") == "max_memory_restart"
            ]
            if len(restarts) >= crossings:
                break
            time.sleep(0.5)
        with open(stamp) as f:
            stamps = [float(x) for x in f.read().split()]
        # Each restart answers the last crossing stamped before it.
        return [r - max(s for s in stamps if s <= r) for r in restarts[:crossings]]
    finally:
        m.close()
        if os.path.exists(stamp):
            os.unlink(stamp)


def main():
    args = run.binary_and_quick(argparse.ArgumentParser())
    seconds = 10 if args.quick else 30
    crossings = 5 if args.quick else 15
    cpu = daemon_cpu(args.binary, 50, seconds)
    print(f"daemon CPU, 50 apps sampled every 1 s, over {seconds} s: {cpu:.2f} % of one core (target <= 1 %)")
    for interval, limit in (("1s", 1000), ("100ms", 100)):
        lat = crossing_latency(args.binary, interval, crossings)
        print(
            f"threshold -> restart at {interval}: median {statistics.median(lat):.0f} ms, "
            f"max {max(lat):.0f} ms over {len(lat)} crossings (target <= {limit} ms)"
        )


if __name__ == "__main__":
    main()
