"""Benchmark 7, attachment streaming: a 200 MB file up through POST /api/settlements/{id}/attachments/
and back down through .../download/ against the S3 endpoint, compared with boto3's own
upload_fileobj / download_fileobj of the same file (default TransferConfig). Target: at least half
of boto3's throughput, and the server's peak RSS growth during a transfer at most 64 MB.

The upload body is a multipart stream generated from the file on disk with its Content-Length
known up front; the download streams to disk and is compared by SHA-256. While each transfer
runs a thread samples the resident memory of the whole gunicorn process tree every 50 ms."""

import hashlib
import http.client
import json
import os
import random
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from . import s3
from .runner import Bench, Measurement
from .server import Server, serve

FILE_MB = 200
MB = 2**20
CHUNK = MB
RSS_LIMIT_MB = 64
RATIO_BOUND = 0.5
SAMPLE_SECONDS = 0.05
# A .zip is accepted when it starts with a local file header; the rest may be anything.
ZIP_HEAD = b"PK\x03\x04"
WARMUP_BYTES = 64 * 1024
HTTP_TIMEOUT = 600
MOTO_RANGE_NOTE = ("moto reads and copies the whole object for every ranged GET, under a lock, so against moto "
                   "download_fileobj's concurrent 8 MB ranges are far slower than one streamed GET")


def run(bench: Bench) -> list[Measurement]:
    size = int((bench.attachment_mb or FILE_MB) * MB)
    workdir = Path(tempfile.mkdtemp(prefix="bench-attachments-"))
    try:
        source = workdir / "source.zip"
        digest = _write_random_file(source, size, bench.seed)
        with s3.endpoint() as endpoint:
            bench.log(f"attachments: {size / MB:g} MB file against {endpoint.url} "
                      f"({'moto started here' if endpoint.started_moto else 'S3_ENDPOINT_URL'})")
            return _measure(bench, endpoint, source, digest, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _measure(bench: Bench, endpoint: s3.Endpoint, source: Path, digest: str, workdir: Path) -> list[Measurement]:
    size = source.stat().st_size
    file_mb = size / MB
    api_up, api_down, boto_up, boto_down = [], [], [], []
    peaks = {"upload": 0.0, "download": 0.0}
    matches = True
    with bench.copy_of(bench.reconciled_db) as db:
        token = bench.query(db, "SELECT value FROM bench_secret WHERE name = 'token:bench-admin'")[0][0]
        # One settlement per run (at most 10 attachments each) and one for warming up.
        settlements = [row[0] for row in bench.query(
            db, "SELECT id FROM settlements_settlement WHERE is_active ORDER BY id LIMIT %s", (bench.runs + 1,))]
        if len(settlements) < bench.runs + 1:
            raise RuntimeError(f"attachments: the dataset has fewer than {bench.runs + 1} settlements")
        client = endpoint.client()
        try:
            with serve(bench, db, env=endpoint.environment()) as server:
                _warm_up(server, token, settlements[-1], workdir)
                _boto_warm_up(client, endpoint.bucket, workdir)
                api = _Api(server, token)
                for index in range(bench.runs):
                    (seconds, attachment_id), up_growth = _sampled(server, api.upload, settlements[index], source,
                                                                   size)
                    api_up.append(file_mb / seconds)
                    peaks["upload"] = max(peaks["upload"], up_growth)

                    target = workdir / "api-download"
                    path = f"/api/settlements/{settlements[index]}/attachments/{attachment_id}/download/"
                    (seconds, received), down_growth = _sampled(server, api.download, path, target)
                    api_down.append(file_mb / seconds)
                    peaks["download"] = max(peaks["download"], down_growth)
                    matches &= received == size and _sha256(target) == digest
                    target.unlink()

                    boto_up.append(file_mb / _boto_upload(client, endpoint.bucket, source, f"bench/{index}"))
                    target = workdir / "boto-download"
                    boto_down.append(file_mb / _boto_download(client, endpoint.bucket, f"bench/{index}", target))
                    matches &= _sha256(target) == digest
                    target.unlink()
                    client.delete_object(Bucket=endpoint.bucket, Key=f"bench/{index}")
                    bench.log(f"attachments run {index + 1}: upload {api_up[-1]:.0f} MB/s (boto3 {boto_up[-1]:.0f}),"
                              f" download {api_down[-1]:.0f} MB/s (boto3 {boto_down[-1]:.0f}),"
                              f" server RSS growth up {up_growth:.1f} MB / down {down_growth:.1f} MB")
        finally:
            # Objects left by the API (and by a run that failed half-way) on an endpoint that outlives us.
            stored = [row[0] for row in bench.query(db, "SELECT file FROM settlements_settlementattachment")]
            try:
                s3.delete_objects(endpoint, [*stored, *(f"bench/{index}" for index in range(bench.runs))])
            except Exception as exc:
                bench.log(f"attachments: could not remove the benchmark's objects: {exc}")

    def measurement(key, title, values, baseline, baseline_title, peak, **notes):
        return Measurement(
            key=key, title=title, unit="MB/s", values=values, baseline=baseline, baseline_title=baseline_title,
            higher_is_better=True, ratio_bound=RATIO_BOUND,
            target=f"≥ {RATIO_BOUND} of boto3's throughput and peak RSS growth ≤ {RSS_LIMIT_MB} MB",
            extra={"file_mb": round(file_mb, 3), "peak_rss_growth_mb": round(peak, 1),
                   "endpoint": "moto (started by the benchmark)" if endpoint.started_moto else "S3_ENDPOINT_URL",
                   **notes,
                   "checks": {"rss_growth_within_64mb": peak <= RSS_LIMIT_MB, "sha256_matches": matches}})

    return [
        measurement("attachment_upload", f"Attachment upload, {file_mb:g} MB through the API", api_up, boto_up,
                    "boto3 upload_fileobj", peaks["upload"]),
        measurement("attachment_download", f"Attachment download, {file_mb:g} MB through the API", api_down,
                    boto_down, "boto3 download_fileobj", peaks["download"], note=MOTO_RANGE_NOTE),
    ]


# --- The file ---------------------------------------------------------------------------------

def _write_random_file(path: Path, size: int, seed: int) -> str:
    generator = random.Random(seed)
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        written = 0
        while written < size:
            block = generator.randbytes(min(CHUNK, size - written))
            if written == 0:
                block = ZIP_HEAD + block[len(ZIP_HEAD):]
            handle.write(block)
            digest.update(block)
            written += len(block)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


# --- Through the API --------------------------------------------------------------------------

class _Api:
    def __init__(self, server: Server, token: str):
        host, port = server.url.removeprefix("http://").split(":")
        self.host, self.port, self.token = host, int(port), token

    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=HTTP_TIMEOUT)

    def upload(self, settlement_id: int, source: Path, size: int, name: str = "bench.zip") -> tuple[float, int]:
        """Seconds until the 201 arrives, and the new attachment's id."""
        boundary = uuid.uuid4().hex
        preamble = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                    f"Content-Type: application/zip\r\n\r\n").encode()
        epilogue = f"\r\n--{boundary}--\r\n".encode()

        def body() -> Iterator[bytes]:
            yield preamble
            with source.open("rb") as handle:
                while block := handle.read(CHUNK):
                    yield block
            yield epilogue

        connection = self._connection()
        try:
            started = time.perf_counter()
            connection.request("POST", f"/api/settlements/{settlement_id}/attachments/", body=body(), headers={
                "Authorization": f"Bearer {self.token}", "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(len(preamble) + size + len(epilogue))})
            response = connection.getresponse()
            answer = response.read()
            seconds = time.perf_counter() - started
        finally:
            connection.close()
        if response.status != 201:
            raise RuntimeError(f"attachment upload answered {response.status}: {answer[:500]!r}")
        return seconds, json.loads(answer)["id"]

    def download(self, path: str, target: Path) -> tuple[float, int]:
        """Seconds until the last byte is on disk, and the number of bytes."""
        connection = self._connection()
        received = 0
        try:
            started = time.perf_counter()
            connection.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
            response = connection.getresponse()
            if response.status != 200:
                raise RuntimeError(f"attachment download answered {response.status}: {response.read()[:500]!r}")
            with target.open("wb") as handle:
                while block := response.read(CHUNK):
                    handle.write(block)
                    received += len(block)
            seconds = time.perf_counter() - started
        finally:
            connection.close()
        return seconds, received


def _warm_up(server: Server, token: str, settlement_id: int, workdir: Path) -> None:
    """Small transfers first, from several threads so both workers take some: the first S3 call of
    a worker imports boto3 and loads its service model, which is not what the benchmark measures."""
    small = workdir / "warm-up.zip"
    small.write_bytes(ZIP_HEAD + os.urandom(WARMUP_BYTES))
    api = _Api(server, token)

    def both(index: int) -> None:
        _, attachment_id = api.upload(settlement_id, small, small.stat().st_size)
        api.download(f"/api/settlements/{settlement_id}/attachments/{attachment_id}/download/",
                     workdir / f"warm-up-{index}")

    threads = [threading.Thread(target=both, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index in range(4):
        (workdir / f"warm-up-{index}").unlink(missing_ok=True)
    small.unlink()


def _sampled(server: Server, transfer: Callable, *args) -> tuple[object, float]:
    """Run `transfer` while sampling the server's RSS; its result and the peak growth in MB."""
    before = server.rss_mb()
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(SAMPLE_SECONDS):
            peak = max(peak, server.rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = transfer(*args)
    finally:
        done.set()
        sampler.join()
    peak = max(peak, server.rss_mb())
    return result, peak - before


# --- boto3 baseline ---------------------------------------------------------------------------

def _boto_warm_up(client, bucket: str, workdir: Path) -> None:
    """The first transfer starts the transfer manager's threads and connection pool."""
    small = workdir / "warm-up-boto"
    small.write_bytes(os.urandom(WARMUP_BYTES))
    _boto_upload(client, bucket, small, "bench/warm-up")
    _boto_download(client, bucket, "bench/warm-up", small)
    client.delete_object(Bucket=bucket, Key="bench/warm-up")
    small.unlink()


def _boto_upload(client, bucket: str, source: Path, key: str) -> float:
    with source.open("rb") as handle:
        started = time.perf_counter()
        client.upload_fileobj(handle, bucket, key)
        return time.perf_counter() - started


def _boto_download(client, bucket: str, key: str, target: Path) -> float:
    with target.open("wb") as handle:
        started = time.perf_counter()
        client.download_fileobj(bucket, key, handle)
        handle.flush()
        return time.perf_counter() - started
