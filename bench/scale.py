#!/usr/bin/env python3
"""Scale: what pmx costs with many apps and on a busy machine, side by side with PM2.

    python3 bench/scale.py [--pm2] [--quick] [--binary PATH]

For each manager, in its own temporary home:
- daemon RSS idle, then with 50 and 500 sleeper apps;
- `jlist` with 10 and 500 apps (median of 30 runs, posix_spawn), and for pmx its ratio to the
  floor of a command: spawning /bin/true plus the same request made in-process on the socket
  (connect, hello, jlist; as the CLI does, after the daemon idled 2 ms);
- 50 sequential `start` commands until all 50 are online;
- idle daemon CPU over 20 s (5 s with --quick) with 50 apps, then the same with 2,000
  unrelated `sleep` processes on the machine (started here, ended here by pid);
- 500 apps from one ecosystem file: from the command to all online, and its ratio to the
  start floor (one process spawning the same 500 scripts until each runs its `sleep`);
- `delete all` with 500 apps: wall time of the command, and until the last app process is gone;
- crash -> respawn of a shell app, median of 20 gaps, and its ratio to the respawn floor (the
  same script restarted by a bare bash loop).

Every daemon, app and foreign process started here is stopped at the end.
"""
import argparse
import json
import socket
import statistics
import struct
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the shared harness: Manager, timed, proc_rss_kib, ...)

MANY = 500
FOREIGN = 2000


def ecosystem(m, count, prefix):
    path = os.path.join(m.home, f"{prefix}.json")
    apps = [{"name": f"{prefix}{i}", "script": run.IDLE} for i in range(count)]
    with open(path, "w") as f:
        json.dump({"apps": apps}, f)
    return path


def socket_round_trip_ms(path, runs=30):
    """Median time of connecting to pmx's socket, its hello and one `jlist`, in ms."""
    def frame(value):
        body = json.dumps(value).encode()
        return struct.pack(">I", len(body)) + body

    def read_frame(s):
        data = b""
        while len(data) < 4:
            data += s.recv(4 - len(data))
        size = struct.unpack(">I", data)[0]
        body = bytearray()
        while len(body) < size:
            body += s.recv(size - len(body))
        return bytes(body)

    samples = []
    for _ in range(runs):
        time.sleep(0.002)
        t0 = time.perf_counter()
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
            s.sendall(frame({"version": 3}))
            read_frame(s)
            s.sendall(frame({"request": "jlist"}))
            read_frame(s)
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def app_pids(m):
    return [p["pid"] for p in m.jlist() if p.get("pid")]


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def cpu_ns(pid):
    """CPU time of every thread of `pid`, in ns (schedstat: finer than stat's clock ticks)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def idle_cpu(pid, seconds):
    """The daemon's CPU over `seconds` of idling, in ms."""
    time.sleep(1)
    before = cpu_ns(pid)
    time.sleep(seconds)
    return (cpu_ns(pid) - before) / 1e6


def foreign_sleepers(count):
    """`count` unrelated processes, as a busy machine has."""
    procs = []
    for _ in range(count):
        procs.append(subprocess.Popen(["sleep", "100000"], stdin=subprocess.DEVNULL))
    return procs


def end(procs):
    for p in procs:
        try:
            p.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
    for p in procs:
        p.wait()


def respawn_floor(samples=20):
    """The same crashing script restarted by a bare bash loop: what any supervisor costs."""
    stamp = tempfile.mktemp(prefix="pmxfloor", dir="/tmp")
    loop = f"for i in $(seq {samples + 2}); do bash {run.CRASH}; done"
    subprocess.run(["bash", "-c", loop], env=dict(os.environ, STAMP_FILE=stamp), check=False)
    with open(stamp) as f:
        lines = f.read().split("\n")
    os.unlink(stamp)
    return run.gaps_of(lines, samples)


def start_floor(count=MANY):
    """One process spawning `count` idle scripts until each has become its `sleep`, in s:
    what starting them costs this machine whoever starts them."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen([run.IDLE], stdin=subprocess.DEVNULL) for _ in range(count)]
    try:
        for p in procs:
            deadline = time.time() + 60
            while time.time() < deadline:
                try:
                    with open(f"/proc/{p.pid}/comm") as f:
                        if f.read().strip() == "sleep":
                            break
                except OSError:
                    pass
                time.sleep(0.0005)
        return time.perf_counter() - t0
    finally:
        end(procs)


def measure(m, idle_seconds, floor, floor_start):
    r = {}
    m.run("ping")
    time.sleep(3)  # settled: pmx hands its start-up code back a second after it listens
    pid = m.daemon_pid()
    r["rss_idle_mib"] = run.proc_rss_kib(pid) / 1024

    run.start_many(m, 10, "j")
    m.wait_online(10)
    r["jlist_10_ms"] = run.timed([m.binary, "jlist"], m.env, 30)
    if m.name == "pmx":
        command_floor = run.timed(["/bin/true"], m.env, 30)
        command_floor += socket_round_trip_ms(os.path.join(m.home, "pmx.sock"))
        r["jlist_10_x_floor"] = r["jlist_10_ms"] / command_floor
    m.run("delete", "all")

    t0 = time.perf_counter()
    run.start_many(m, 50, "s")
    m.wait_online(50)
    r["start50_s"] = time.perf_counter() - t0
    time.sleep(3)  # settled: pmx hands back the code of a burst of commands 2 s after it ends
    pid = m.daemon_pid()  # read again at each figure: a manager may have replaced its daemon
    r["rss_50_mib"] = run.proc_rss_kib(pid) / 1024
    r[f"idle_cpu_50_ms_{idle_seconds}s"] = idle_cpu(pid, idle_seconds)
    others = foreign_sleepers(FOREIGN)
    try:
        r[f"idle_cpu_50_busy_ms_{idle_seconds}s"] = idle_cpu(pid, idle_seconds)
    finally:
        end(others)
    m.run("delete", "all")

    eco = ecosystem(m, MANY, "e")
    t0 = time.perf_counter()
    m.run("start", eco)
    m.wait_online(MANY, timeout=300)
    r["start500_eco_s"] = time.perf_counter() - t0
    r["start500_x_floor"] = r["start500_eco_s"] / floor_start
    time.sleep(3)
    pid = m.daemon_pid()
    r["rss_500_mib"] = run.proc_rss_kib(pid) / 1024
    r["jlist_500_ms"] = run.timed([m.binary, "jlist"], m.env, 30)
    pids = app_pids(m)
    t0 = time.perf_counter()
    m.run("delete", "all")
    r["delete500_cmd_s"] = time.perf_counter() - t0
    deadline = time.time() + 120
    while any(alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.01)
    r["delete500_gone_s"] = time.perf_counter() - t0

    r["crash_respawn_ms"] = run.crash_gaps(m)
    r["crash_respawn_x_floor"] = r["crash_respawn_ms"] / floor
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pm2", action="store_true", help="also measure PM2 (npm install into a temp prefix)")
    args = run.binary_and_quick(ap)  # builds pmx and pmxd (one package)
    idle = 5 if args.quick else 20
    managers, cleanup = run.managers_for(args.binary, args.pm2)
    floor = respawn_floor()
    floor_start = start_floor()
    results = {}
    try:
        for m in managers:
            print(f"measuring {m.name} ...", file=sys.stderr)
            results[m.name] = measure(m, idle, floor, floor_start)
    finally:
        for m in managers:
            m.close()
        for c in cleanup:
            subprocess.run(["rm", "-rf", c])
    print(f"respawn floor (a bash loop restarting the crashing script): {floor:.2f} ms")
    print(f"start floor (one process spawning {MANY} idle scripts): {floor_start:.2f} s")
    print(f"exec floor (/bin/true): {run.timed(['/bin/true'], dict(os.environ), 30):.2f} ms")
    run.print_table(results, width=28)


if __name__ == "__main__":
    main()
