#!/usr/bin/env python3
"""The hostile-input probes of issue 10, items 1-7, against one ghmetrics binary.

    python3 benches/scripts/hostile.py BINARY [BINARY ...]

Runs every probe against each binary in turn (e.g. the release build of an old
commit and of today's) and prints one line per probe and binary. Everything
runs on 127.0.0.1 with data made here; it takes a few minutes per binary.

1. timeline CPU: CPU seconds the service spends on one
   /metrics/visualization/timeline?offset_minutes=138939952000 (and on the
   widest window it accepts).
2. slow readers: 10 clients read 100 bytes of a ~15 MB pr-counts answer and
   stop; then 20 requests to event-counts: how many got 503 (or no answer).
3. label cardinality: 5,000 requests with invented methods; /metrics bytes.
4. idle sockets: 100 idle and 100 half-header connections; how many are still
   open after 75 s.
5. import memory: peak RSS importing a gzip of 1 GiB of 'a' with no newline.
6. retention overflow: events left 5 s after `serve --retention
   18446744073709551615s` on a database of 1,000 events (or the startup error).
7. upstream body: peak RSS while the poller reads a 1.5 GB /events answer.
"""

import gzip
import http.server
import json
import os
import re
import shutil
import socket
import socketserver
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

FIXTURE = os.path.join(os.path.dirname(__file__), "../../tests/fixtures/events-2015-01-01-first1000.json.gz")


def start(binary, *args, env=None):
    """Starts `serve` on 127.0.0.1:0; returns (process, address)."""
    process = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", *args],
        # Logs go to stderr today and went to stdout before: read both.
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "RUST_LOG": "ghmetrics=info", **(env or {})},
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        match = re.search(r"serving HTTP address=([0-9.:]+)", re.sub(r"\x1b\[[0-9;]*m", "", line))
        if match:
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
            return process, match.group(1)
    process.kill()
    raise RuntimeError("the service did not start")


def stop(process):
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def get(address, path, timeout=30):
    try:
        with urllib.request.urlopen(f"http://{address}{path}", timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except Exception:  # noqa: BLE001 - a reset or timeout is an answer here
        return None, b""


def settle_cpu(pid, quiet=1.0, limit=60):
    """Waits until the process stops using CPU; returns the CPU seconds it used."""
    last = cpu_seconds(pid)
    deadline = time.time() + limit
    while time.time() < deadline:
        time.sleep(quiet)
        now = cpu_seconds(pid)
        if now - last < 0.05:
            return now
        last = now
    return cpu_seconds(pid)


def probe_timeline(binary, work):
    process, address = start(binary, "--no-poll", "--db", ":memory:")
    try:
        before = settle_cpu(process.pid)
        status, _ = get(address, "/metrics/visualization/timeline?offset_minutes=138939952000", timeout=60)
        after = settle_cpu(process.pid)
        widest = 52_560_000
        get(address, f"/metrics/visualization/timeline?offset_minutes={widest}&bucket_minutes={widest // 1000}")
        last = settle_cpu(process.pid)
        return f"status {status}, {after - before:.2f} CPU s; widest accepted window {last - after:.2f} CPU s"
    finally:
        stop(process)


def many_repos_db(binary, work, repos=735_000):
    path = os.path.join(work, "repos.db")
    if os.path.exists(path):
        return path
    events = os.path.join(work, "repos.ndjson")
    with open(events, "w") as out:
        for i in range(repos):
            out.write(json.dumps({
                "id": str(10_000_000 + i), "type": "PullRequestEvent",
                "created_at": "2021-07-21T06:00:00Z",
                "repo": {"name": f"owner-{i:07d}/repository"},
                "payload": {"action": "opened", "number": 1},
            }) + "\n")
    subprocess.run([binary, "import", "--db", path, events], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return path


def probe_slow_readers(binary, work):
    db = many_repos_db(binary, work)
    copy = os.path.join(work, "slow.db")
    for leftover in (copy + "-wal", copy + "-shm"):
        if os.path.exists(leftover):
            os.remove(leftover)
    shutil.copy(db, copy)
    process, address = start(binary, "--no-poll", "--db", copy)
    host, port = address.split(":")
    stalled = []
    try:
        for _ in range(10):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect((host, int(port)))
            sock.sendall(b"GET /metrics/pr-counts HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.settimeout(30)
            try:
                sock.recv(100)
            except OSError:
                pass
            stalled.append(sock)
        time.sleep(1)
        failed = 0
        for _ in range(20):
            status, _ = get(address, "/metrics/event-counts?offset_minutes=60", timeout=15)
            failed += status != 200
        return f"{failed} of 20 event-counts requests failed (503 or no answer) with 10 stalled readers"
    finally:
        for sock in stalled:
            sock.close()
        stop(process)


def probe_labels(binary, work):
    process, address = start(binary, "--no-poll", "--db", ":memory:")
    host, port = address.split(":")
    try:
        for i in range(5000):
            with socket.create_connection((host, int(port))) as sock:
                sock.sendall(f"INVENTED{i} /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                while sock.recv(65536):
                    pass
        _, body = get(address, "/metrics")
        return f"/metrics is {len(body):,} bytes after 5,000 invented methods; RSS peak {rss_mb(process.pid):.0f} MB"
    finally:
        stop(process)


def probe_sockets(binary, work):
    process, address = start(binary, "--no-poll", "--db", ":memory:")
    host, port = address.split(":")
    sockets = []
    try:
        for i in range(200):
            sock = socket.create_connection((host, int(port)))
            if i % 2:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            sockets.append(sock)
        time.sleep(75)
        still_open = 0
        for sock in sockets:
            sock.setblocking(False)
            try:
                still_open += sock.recv(1) != b""
            except BlockingIOError:
                still_open += 1
            except OSError:
                pass
        return f"{still_open} of 200 idle/half-header connections still open after 75 s"
    finally:
        for sock in sockets:
            sock.close()
        stop(process)


def probe_import(binary, work):
    bomb = os.path.join(work, "bomb.json.gz")
    if not os.path.exists(bomb):
        with gzip.open(bomb, "wb", compresslevel=9) as out:
            block = b"a" * (1 << 20)
            for _ in range(1024):
                out.write(block)
    db = os.path.join(work, "import.db")
    result = subprocess.run(["/usr/bin/time", "-f", "%M", binary, "import", "--db", db, bomb],
                            capture_output=True, text=True)
    peak_kb = int(result.stderr.strip().splitlines()[-1])
    summary = result.stdout.strip().splitlines()[0] if result.stdout.strip() else ""
    bad = re.search(r"(\d+) bad lines", summary)
    return (f"peak RSS {peak_kb / 1024:.0f} MB for a {os.path.getsize(bomb) / 1e6:.1f} MB gzip of 1 GiB; "
            f"exit {result.returncode}; {bad.group(0) if bad else 'no summary'}")


def probe_retention(binary, work):
    db = os.path.join(work, "retention.db")
    for leftover in (db, db + "-wal", db + "-shm"):
        if os.path.exists(leftover):
            os.remove(leftover)
    subprocess.run([binary, "import", "--db", db, FIXTURE], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    count = lambda: sqlite3.connect(db).execute("SELECT count(*) FROM events").fetchone()[0]  # noqa: E731
    before = count()
    process = subprocess.Popen(
        [binary, "serve", "--no-poll", "--listen", "127.0.0.1:0", "--db", db,
         "--retention", "18446744073709551615s"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(5)
    exited = process.poll()
    stop(process)
    error = process.stdout.read().strip().splitlines()
    said = error[-1][:90] if exited is not None and error else "still running"
    return f"{count()} of {before} events left after 5 s (exit {exited}: {said})"


class HugeEvents(http.server.BaseHTTPRequestHandler):
    size = 1_500_000_000

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        chunk = b" " * (1 << 20)
        try:
            self.wfile.write(b"[")
            for _ in range(self.size // len(chunk)):
                self.wfile.write(chunk)
            self.wfile.write(b"]")
        except OSError:
            pass

    def log_message(self, *args):
        pass


def probe_upstream(binary, work):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), HugeEvents)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    process, _ = start(binary, "--db", ":memory:", "--github-api-url", url)
    try:
        time.sleep(20)
        return f"peak RSS {rss_mb(process.pid):.0f} MB while polling a 1.5 GB /events answer"
    finally:
        stop(process)
        server.shutdown()


PROBES = [
    ("1 timeline", probe_timeline),
    ("2 slow readers", probe_slow_readers),
    ("3 labels", probe_labels),
    ("4 sockets", probe_sockets),
    ("5 import", probe_import),
    ("6 retention", probe_retention),
    ("7 upstream", probe_upstream),
]


def main():
    binaries = sys.argv[1:]
    if not binaries:
        sys.exit(__doc__)
    only = os.environ.get("PROBES")
    with tempfile.TemporaryDirectory() as work:
        for name, probe in PROBES:
            if only and name.split()[0] not in only.split(","):
                continue
            for binary in binaries:
                try:
                    result = probe(binary, work)
                except Exception as error:  # noqa: BLE001 - report and go on
                    result = f"probe failed: {error}"
                print(f"{name:15} {binary}: {result}", flush=True)


if __name__ == "__main__":
    main()
