#!/usr/bin/env python3
"""`pmx update` (issue 14): the time from the command to the new daemon answering, with 50
apps, and the longest gap in a `listen` app's availability while it happens, probed by a new
connection every 2 ms. Side by side with `pm2 update` (which saves, kills its daemon and
resurrects: every app restarts) when `--pm2` is given.

    python3 bench/update.py            # pmx only (builds target/release/pmx first)
    python3 bench/update.py --pm2      # also PM2, installed with npm into a temporary prefix
    python3 bench/update.py --rounds 5
    python3 bench/update.py --cluster  # the probed app as PM2 users run it: `-i 2`, cluster
                                       # mode, no --listen (pmx's workers share its socket)

Figures per round: `update_ms` (the command, until the daemon answers again: pmx's CLI waits
for it, for PM2 the harness pings after), `longest_gap_ms` between two answered probes
across the update, `failed` probes, and whether every app kept its pid.
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import free_port, wait_answering  # noqa: E402
from run import IDLE, ROOT, Pm2, Pmx, install_pm2  # noqa: E402

APP = os.path.join(ROOT, "tests", "fixtures", "cluster.js")


def probe_once(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


class Probe:
    """Probes the port every 2 ms; keeps the times of the answered probes and the failures."""

    def __init__(self, port):
        self.port, self.answered, self.failed, self.stop = port, [], 0, False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stop:
            if probe_once(self.port):
                self.answered.append(time.perf_counter())
            else:
                self.failed += 1
            time.sleep(0.002)

    def finish(self):
        self.stop = True
        self.thread.join()
        gaps = [b - a for a, b in zip(self.answered, self.answered[1:])]
        return max(gaps) * 1000 if gaps else float("inf"), self.failed


def pids(m):
    return sorted((p["name"], p["pid"]) for p in m.jlist())


def measure(m, apps, rounds, cluster):
    port = free_port()
    for i in range(apps):
        m.start(IDLE, f"idle{i}")
    if cluster:
        extra = ["-i", "2"]
    else:
        extra = ["--listen", f"127.0.0.1:{port}"] if isinstance(m, Pmx) else []
    m.start(APP, "web", *extra, env={"PORT": str(port)})
    listen_instances = 2 if cluster else 1
    m.wait_online(apps + listen_instances)
    wait_answering(port)
    if isinstance(m, Pm2):
        m.run("save")
    results = []
    for _ in range(rounds):
        before = pids(m)
        probe = Probe(port)
        time.sleep(0.2)
        t0 = time.perf_counter()
        m.run("update")
        if isinstance(m, Pm2):
            m.run("ping")
        update_ms = (time.perf_counter() - t0) * 1000
        m.wait_online(apps + listen_instances)
        time.sleep(0.3)
        gap, failed = probe.finish()
        results.append({
            "update_ms": round(update_ms, 1),
            "longest_gap_ms": round(gap, 1),
            "failed": failed,
            "same_pids": pids(m) == before,
        })
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pm2", action="store_true")
    ap.add_argument("--apps", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cluster", action="store_true")
    ap.add_argument("--pmx", default=os.path.join(ROOT, "target", "release", "pmx"))
    args = ap.parse_args()
    if args.pmx.endswith("release/pmx"):
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "pmx"], cwd=ROOT, check=True)
    managers, cleanup = [Pmx(args.pmx)], []
    if args.pm2:
        binary, prefix = install_pm2()
        managers.append(Pm2(binary))
        cleanup.append(prefix)
    try:
        for m in managers:
            rounds = measure(m, args.apps, args.rounds, args.cluster)
            for r in rounds:
                print(m.name, r)
            print(
                f"{m.name}: {args.apps} apps + 1 listen app"
                f"{' (cluster mode, 2 instances)' if args.cluster else ''}, {args.rounds} updates: "
                f"update median {statistics.median(r['update_ms'] for r in rounds)} ms, "
                f"longest gap {max(r['longest_gap_ms'] for r in rounds)} ms, "
                f"failed probes {sum(r['failed'] for r in rounds)}, "
                f"pids kept in {sum(r['same_pids'] for r in rounds)}/{len(rounds)} rounds"
            )
    finally:
        for m in managers:
            m.close()
        for prefix in cleanup:
            subprocess.run(["rm", "-rf", prefix])


if __name__ == "__main__":
    main()
