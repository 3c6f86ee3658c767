"""The product served for the HTTP benchmarks: gunicorn (WSGI, the production server) or uvicorn
(ASGI, for /mcp/) in their own processes on a free loopback port, against a benchmark database."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .runner import ROOT, Bench

START_TIMEOUT = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _children(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as children:
                found.extend(int(child) for child in children.read().split())
        except FileNotFoundError:
            continue
    return found


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/statm") as statm:
                total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            pending.extend(_children(current))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 2**20


def stop(process: subprocess.Popen, *, timeout: float) -> None:
    """Terminate a helper process, killing it if it does not go within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Server:
    url: str
    process: subprocess.Popen

    def rss_mb(self) -> float:
        return tree_rss_mb(self.process.pid)


def _command(kind: str, port: int, workers: int) -> list[str]:
    address = f"127.0.0.1:{port}"
    if kind == "gunicorn":
        return [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", address, "--workers",
                str(workers), "--worker-class", "gthread", "--threads", "4", "--log-level", "warning",
                "--timeout", "300"]
    return [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--log-level", "warning", "--no-access-log"]


def _wait_until_up(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"The server exited with {process.returncode} before answering")
        try:
            with urllib.request.urlopen(f"{url}/health/", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"The server did not answer {url}/health/ within {START_TIMEOUT} s")


@contextmanager
def serve(bench: Bench, database: str, *, kind: str = "gunicorn", workers: int = 2,
          env: dict | None = None) -> Iterator[Server]:
    port = free_port()
    environment = {**bench.environment(database), **(env or {})}
    process = subprocess.Popen(_command(kind, port, workers), cwd=ROOT, env=environment)
    server = Server(f"http://127.0.0.1:{port}", process)
    try:
        _wait_until_up(server.url, process)
        yield server
    finally:
        stop(process, timeout=20)
