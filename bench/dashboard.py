#!/usr/bin/env python3
"""Issue 8's figures: what looking costs.

    python3 bench/dashboard.py            # builds target/release/pmx first
    python3 bench/dashboard.py --quick    # shorter CPU windows, fewer scrapes

1. Daemon CPU (utime+stime from /proc, all threads) with 50 idle apps: idle, then with
   `pmx monit` open (in tmux) and the dashboard open in headless Chromium (the app list and
   one app's page, each refreshing every 2 s). Target: <= 2 % of one core beyond idle.
2. `/metrics` scrape time with 200 instances: median and p90 of wall time from connect to
   the last byte, over 50 scrapes (a fresh connection each). Target: <= 10 ms.

Needs tmux, /usr/bin/chromium and tests/browser/node_modules (`.ci/run` installs them).
Every daemon, app, tmux server and browser started here is stopped at the end.
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the harness's Manager, fixtures and /proc readers)

BROWSER_DIR = os.path.join(run.ROOT, "tests", "browser")

# Keeps two tabs of the dashboard open for as long as asked.
HOLD = """
import { chromium } from "playwright-core";
const [url, seconds] = process.argv.slice(1);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu"] });
const list = await browser.newPage();
await list.goto(url);
const app = await browser.newPage();
await app.goto(url + "#/app/idle0");
console.log("open");
await new Promise((r) => setTimeout(r, Number(seconds) * 1000));
await browser.close();
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path):
    """One GET on a fresh connection; (ms, bytes)."""
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    ms = (time.perf_counter() - t0) * 1000
    if not data.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(data[:200])
    return ms, len(data)


def looking_cost(binary, seconds):
    m = run.Pmx(binary)
    port = free_port()
    m.env["PMX_METRICS"] = f"127.0.0.1:{port}"
    tmux_socket = os.path.join(m.home, "tmux")
    tmux = ["tmux", "-S", tmux_socket]
    browser = None
    try:
        run.start_many(m, 50, "idle")
        m.wait_online(50)
        time.sleep(3)
        pid = m.daemon_pid()
        idle = run.cpu_percent(pid, seconds)
        monit = f"PMX_HOME={m.home} {binary} monit"
        subprocess.run([*tmux, "new-session", "-d", "-x", "150", "-y", "45", monit], check=True)
        browser = subprocess.Popen(
            ["node", "--input-type=module", "-e", HOLD, f"http://127.0.0.1:{port}/", str(seconds + 30)],
            cwd=BROWSER_DIR, stdout=subprocess.PIPE, text=True)
        if browser.stdout.readline().strip() != "open":
            raise RuntimeError("the browser did not open the dashboard")
        time.sleep(3)
        looking = run.cpu_percent(pid, seconds)
        return idle, looking
    finally:
        if browser:
            browser.kill()
            browser.wait()
        subprocess.run([*tmux, "kill-server"], capture_output=True)
        m.close()


def scrape_time(binary, scrapes, history_s):
    m = run.Pmx(binary)
    port = free_port()
    m.env["PMX_METRICS"] = f"127.0.0.1:{port}"
    try:
        m.start(run.IDLE, "big", "-i", "200")
        m.wait_online(200)
        online = time.monotonic()
        time.sleep(3)  # sampled at least once
        get(port, "/metrics")
        samples = [get(port, "/metrics") for _ in range(scrapes)]
        times = sorted(ms for ms, _ in samples)
        api = statistics.median(get(port, "/api/apps")[0] for _ in range(10))
        # What a dashboard opened now fetches once: the kept samples (a minute, when full).
        time.sleep(max(0, history_s - (time.monotonic() - online)))
        recent = [get(port, "/api/samples") for _ in range(10)]
        recent_ms = statistics.median(ms for ms, _ in recent)
        return statistics.median(times), times[int(len(times) * 0.9)], samples[0][1], api, (recent_ms, recent[0][1])
    finally:
        m.close()


def main():
    args = run.binary_and_quick(argparse.ArgumentParser())
    seconds = 10 if args.quick else 30
    idle, looking = looking_cost(args.binary, seconds)
    median, p90, size, api, recent = scrape_time(args.binary, 20 if args.quick else 50, 5 if args.quick else 62)
    print(f"daemon CPU, 50 apps, idle:                       {idle:.2f} % of one core")
    print(f"daemon CPU, 50 apps, monit + dashboard open:     {looking:.2f} %")
    print(f"beyond idle:                                     {looking - idle:.2f} %  (target <= 2)")
    print(f"/metrics with 200 instances: median {median:.2f} ms, p90 {p90:.2f} ms, {size} bytes  (target <= 10 ms)")
    print(f"/api/apps with 200 instances: median {api:.2f} ms")
    print(f"/api/samples with 200 instances, {'5 s' if args.quick else 'a minute'} of samples: median {recent[0]:.2f} ms, {recent[1]} bytes")


if __name__ == "__main__":
    main()
