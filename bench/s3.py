"""An S3 endpoint for the benchmarks: the one S3_ENDPOINT_URL names (CI has one), else a moto server
started on a free loopback port for the duration and stopped afterwards. Either way a bucket
exists; one this module created is emptied and removed again."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .server import free_port, stop

START_TIMEOUT = 30
MOTO_BUCKET = "bench-attachments"
MOTO_CREDENTIALS = ("testing", "testing")


@dataclass
class Endpoint:
    url: str
    bucket: str
    access_key: str
    secret_key: str
    region: str
    started_moto: bool

    def environment(self) -> dict[str, str]:
        """The variables config/settings/base.py reads to store attachments on this endpoint."""
        return {"S3_ENDPOINT_URL": self.url, "S3_BUCKET": self.bucket, "S3_ACCESS_KEY_ID": self.access_key,
                "S3_SECRET_ACCESS_KEY": self.secret_key, "S3_REGION": self.region}

    def client(self, **config):
        """A boto3 client configured as the product's storage is (path addressing, SigV4)."""
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.url, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name=self.region,
                            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4", **config))


def _wait_for_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"moto_server did not listen on port {port} within {START_TIMEOUT} s")


@contextmanager
def _moto() -> Iterator[str]:
    port = free_port()
    command = [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    # moto logs every request on stderr; a 200 MB multipart upload alone is dozens of lines.
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process, timeout=10)


@contextmanager
def endpoint() -> Iterator[Endpoint]:
    configured = os.environ.get("S3_ENDPOINT_URL")
    with (_external(configured) if configured else _moto()) as url:
        if configured:
            found = Endpoint(url, os.environ.get("S3_BUCKET") or MOTO_BUCKET, os.environ.get("S3_ACCESS_KEY_ID", ""),
                             os.environ.get("S3_SECRET_ACCESS_KEY", ""), os.environ.get("S3_REGION", "us-east-1"),
                             started_moto=False)
        else:
            found = Endpoint(url, MOTO_BUCKET, *MOTO_CREDENTIALS, "us-east-1", started_moto=True)
        client = found.client()
        created = _ensure_bucket(client, found.bucket)
        try:
            yield found
        finally:
            if created and not found.started_moto:
                delete_objects(found, [item["Key"] for item in _listing(client, found.bucket)])
                client.delete_bucket(Bucket=found.bucket)


@contextmanager
def _external(url: str) -> Iterator[str]:
    yield url


def _ensure_bucket(client, bucket: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
        return False
    except ClientError:
        client.create_bucket(Bucket=bucket)
        return True


def _listing(client, bucket: str) -> list[dict]:
    found = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        found.extend(page.get("Contents", []))
    return found


def delete_objects(found: Endpoint, keys: list[str]) -> None:
    client = found.client()
    for start in range(0, len(keys), 1000):
        batch = keys[start:start + 1000]
        if batch:
            client.delete_objects(Bucket=found.bucket, Delete={"Objects": [{"Key": key} for key in batch]})
