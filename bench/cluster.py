#!/usr/bin/env python3
"""Cluster mode (issue 7): a 2-instance Node HTTP server behind pmx's shared socket
(`--listen`), in pmx's cluster mode as PM2 users type it (`-i 2`, the port only the app
knows), and in PM2's cluster mode (Node's cluster module), the same file for all.

    python3 bench/cluster.py            # pmx only (builds target/release/pmx first)
    python3 bench/cluster.py --pm2      # also PM2, installed with npm into a temporary prefix
    python3 bench/cluster.py --quick    # shorter runs

Needs `wrk` (Debian's package). Figures: requests/s and latency percentiles under wrk
(keep-alive, 64 connections); then failed requests while the app is reloaded 5 times under
load, with keep-alive connections and with a new connection per request, for the plain app
and for one that exits the moment it gets SIGINT. A failed request is any socket error
(connect, read, write, timeout) or a status other than 2xx/3xx as wrk counts them.
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ROOT, Pm2, Pmx, install_pm2  # noqa: E402

APP = os.path.join(ROOT, "tests", "fixtures", "cluster.js")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_answering(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"nothing answers on {port}")


def start(m, port, exit_at_once, listen):
    env = {"EXIT_AT_ONCE": "1" if exit_at_once else "0"}
    if listen:
        env["PORT"] = str(port)
        m.start(APP, "web", "-i", "2", "--listen", f"127.0.0.1:{port}", env=env)
    else:
        # PM2's command line: the port only the app knows (pmx: its cluster workers ask the
        # daemon for it; PM2: Node's cluster module).
        env["APP_PORT"] = str(port)
        m.start(APP, "web", "-i", "2", env=env)
    m.wait_online(2)
    wait_answering(port)


def wrk(port, seconds, close=False):
    args = ["wrk", "-t2", "-c64", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}/"]
    if close:
        args[1:1] = ["-H", "Connection: close"]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def parse(out):
    r = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for p in ("50", "90", "99"):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        scale = {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
        r[f"p{p}_ms"] = float(m.group(1)) * scale
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["socket_errors"] = sum(int(x) for x in errors.groups()) if errors else 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    r["requests"] = int(re.search(r"(\d+) requests in", out).group(1))
    return r


def reloads_under_load(m, port, seconds, close):
    result = {}
    thread = threading.Thread(target=lambda: result.update(parse(wrk(port, seconds, close))))
    thread.start()
    time.sleep(1)
    gap = (seconds - 3) / 5
    for _ in range(5):
        t0 = time.time()
        m.run("reload", "web")
        time.sleep(max(0.0, gap - (time.time() - t0)))
    thread.join()
    return result


def bench(m, quick, listen):
    figures = {}
    port = free_port()
    start(m, port, exit_at_once=False, listen=listen)
    wrk(port, 2)  # warm up
    figures["throughput"] = parse(wrk(port, 5 if quick else 10))
    seconds = 10 if quick else 15
    for exit_at_once in (False, True):
        if exit_at_once:
            m.run("delete", "all")
            port = free_port()
            start(m, port, exit_at_once=True, listen=listen)
        for close in (False, True):
            key = f"reload {'exits-at-once' if exit_at_once else 'plain'} {'close' if close else 'keep-alive'}"
            figures[key] = reloads_under_load(m, port, seconds, close)
    m.run("delete", "all")
    return figures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pm2", action="store_true", help="also measure PM2")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    subprocess.run(["cargo", "build", "--release", "-p", "pmx"], cwd=ROOT, check=True)
    managers = [Pmx(os.path.join(ROOT, "target", "release", "pmx"))]
    prefix = None
    if args.pm2:
        binary, prefix = install_pm2()
        managers.append(Pm2(binary))
    results = {}
    try:
        for m in managers:
            if isinstance(m, Pmx):
                results[f"{m.name} --listen"] = bench(m, args.quick, listen=True)
                results[f"{m.name} -i 2"] = bench(m, args.quick, listen=False)
            else:
                results[m.name] = bench(m, args.quick, listen=False)
    finally:
        for m in managers:
            m.close()
        if prefix:
            shutil.rmtree(prefix, ignore_errors=True)
    for name, figures in results.items():
        t = figures.pop("throughput")
        print(f"{name}: {t['rps']:.0f} req/s, p50 {t['p50_ms']:.2f} ms, p90 {t['p90_ms']:.2f} ms, "
              f"p99 {t['p99_ms']:.2f} ms, errors {t['socket_errors'] + t['non_2xx']}")
        for key, r in figures.items():
            print(f"  {key:32} {r['requests']:>7} requests, failed: {r['socket_errors']} socket errors, "
                  f"{r['non_2xx']} non-2xx")


if __name__ == "__main__":
    main()
