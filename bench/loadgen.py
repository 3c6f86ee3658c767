"""HTTP load for the API benchmark: wrk when it is installed (it costs the server's CPU least), else
an equivalent pure-Python generator (threads with keep-alive http.client connections, each
sending the next request as soon as the previous answer is read). Both report requests per
second and the answers that were not 2xx or failed outright."""

import http.client
import re
import shutil
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

THREADS = 2
CONNECTIONS = 8


@dataclass
class Load:
    generator: str
    requests_per_s: float
    requests: int
    failed: int  # non-2xx answers, socket errors and timeouts

    def as_dict(self) -> dict:
        return asdict(self)


def run(url: str, headers: dict[str, str], seconds: float, connections: int = CONNECTIONS) -> Load:
    if shutil.which("wrk"):
        return run_wrk(url, headers, seconds, connections)
    return run_python(url, headers, seconds, connections)


# --- wrk ----------------------------------------------------------------------------------

def run_wrk(url: str, headers: dict[str, str], seconds: float, connections: int = CONNECTIONS) -> Load:
    command = ["wrk", f"-t{min(THREADS, connections)}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
               "--timeout", "30s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    return parse_wrk(output)


def _number(pattern: str, text: str, default: float = 0.0) -> float:
    match = re.search(pattern, text)
    return float(match.group(1)) if match else default


def parse_wrk(output: str) -> Load:
    """wrk counts an answer >= 400 as "Non-2xx or 3xx"; socket errors are listed separately."""
    rate = _number(r"Requests/sec:\s+([\d.]+)", output, default=-1)
    if rate < 0:
        raise RuntimeError(f"Unexpected wrk output:\n{output}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    failed = int(_number(r"Non-2xx or 3xx responses:\s+(\d+)", output))
    failed += sum(int(value) for value in errors.groups()) if errors else 0
    return Load("wrk", rate, int(_number(r"(\d+) requests in", output)), failed)


# --- Pure Python --------------------------------------------------------------------------

@dataclass
class _Tally:
    requests: int = 0
    failed: int = 0


def _hammer(url: str, headers: dict[str, str], deadline: float, tally: _Tally) -> None:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        while time.perf_counter() < deadline:
            try:
                connection.request("GET", target, headers=headers)
                response = connection.getresponse()
                response.read()
                tally.requests += 1
                tally.failed += not 200 <= response.status < 300
            except (OSError, http.client.HTTPException):
                tally.failed += 1
                connection.close()  # reconnects on the next request
    finally:
        connection.close()


def run_python(url: str, headers: dict[str, str], seconds: float, connections: int = CONNECTIONS) -> Load:
    tallies = [_Tally() for _ in range(connections)]
    started = time.perf_counter()
    deadline = started + seconds
    threads = [threading.Thread(target=_hammer, args=(url, headers, deadline, tally)) for tally in tallies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    requests = sum(tally.requests for tally in tallies)
    return Load("python", requests / elapsed, requests, sum(tally.failed for tally in tallies))
