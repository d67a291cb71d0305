#!/usr/bin/env python3
"""The log capture benchmark of issue 5: an app writes 1,000,000 lines of 100 bytes to
stdout as fast as it can.

    python3 bench/logs.py           # pmx (builds target/release/pmx first)
    python3 bench/logs.py --pm2     # also PM2, installed with npm into a temporary prefix

Reported per manager, plain and with `--time`: the app's wall time against the same app
writing to a file directly (the floor), the lines that reached the log file, and the daemon's
CPU time while they were captured.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ROOT, Pm2, Pmx, install_pm2, proc_cpu_ms  # noqa: E402

FLOOD = os.path.join(ROOT, "bench", "fixtures", "flood.py")
LINES = 1_000_000


def floor(runs=3):
    """The app's time writing to a file itself (best of `runs`)."""
    best = None
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as d:
            result = os.path.join(d, "result")
            with open(os.path.join(d, "out.log"), "w") as out:
                p = subprocess.Popen([sys.executable, FLOOD], stdout=out,
                                     env=dict(os.environ, RESULT=result, LINES=str(LINES)))
                wait_file(result)
                p.kill()
                p.wait()
            elapsed = float(open(result).read())
            best = elapsed if best is None else min(best, elapsed)
    return best


def wait_file(path, timeout=300):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        if time.time() > deadline:
            raise RuntimeError(f"{path} did not appear")
        time.sleep(0.01)


def count_lines(path):
    """Lines in a log file and in its rotated copies (`NAME__DATE.log`)."""
    d, name = os.path.split(path)
    stem = name[:-4] if name.endswith(".log") else name
    total = 0
    for f in os.listdir(d):
        if f == name or (f.startswith(stem + "__") and not f.endswith(".tmp")):
            with open(os.path.join(d, f), "rb") as fh:
                total += sum(c.count(b"\n") for c in iter(lambda: fh.read(1 << 20), b""))
    return total


def flood(m, name, log, extra):
    """Starts the flood under manager m; returns (app s, lines in the log, daemon CPU s)."""
    m.run("ping")
    daemon = m.daemon_pid()
    result = os.path.join(m.home, f"{name}.result")
    cpu0 = proc_cpu_ms(daemon)
    m.start(FLOOD, name, "--interpreter", "python3", *extra,
            env={"RESULT": result, "LINES": str(LINES)})
    wait_file(result)
    deadline = time.time() + 120
    lines = 0
    while time.time() < deadline:
        lines = count_lines(log) if os.path.exists(log) else 0
        if lines >= LINES:
            break
        time.sleep(0.2)
    cpu = (proc_cpu_ms(daemon) - cpu0) / 1000
    m.run("delete", name, check=False)
    return float(open(result).read()), lines, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pm2", action="store_true", help="also measure PM2")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-p", "pmx"], cwd=ROOT, check=True)
    base = floor()
    print(f"floor (the app writing to a file itself): {base:.2f} s for {LINES:,} lines")
    managers = [Pmx(os.path.join(ROOT, "target", "release", "pmx"))]
    prefix = None
    if args.pm2:
        binary, prefix = install_pm2()
        managers.append(Pm2(binary))
    print(f"{'manager':<8}{'mode':<7}{'app s':>8}{'× floor':>9}{'lines':>11}{'daemon CPU s':>14}")
    try:
        for m in managers:
            for mode, extra in [("plain", []), ("time", ["--time"])]:
                name = f"flood{mode}"
                log = os.path.join(m.home, "logs", f"{name}-out.log")
                app, lines, cpu = flood(m, name, log, extra)
                print(f"{m.name:<8}{mode:<7}{app:>8.2f}{app / base:>9.2f}{lines:>11,}{cpu:>14.2f}")
    finally:
        for m in managers:
            m.close()
        if prefix:
            subprocess.run(["rm", "-rf", prefix])


if __name__ == "__main__":
    main()
