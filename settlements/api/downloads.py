"""Streaming responses for attachments, shared by the staff API and the customer page."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from botocore.exceptions import BotoCoreError, ClientError
from django.db import connections
from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes

from settlements import files
from settlements.services import STORAGE_UNAVAILABLE_MESSAGE, StorageUnavailable

# What a download can be served as: the types of the allowed files (see settlements.files).
DOWNLOAD_CONTENT_TYPES = sorted({file_type.content_type for file_type in files.FILE_TYPES.values()}
                                | {"application/octet-stream"})


def download_responses() -> dict:
    """The 200 of a download in OpenAPI terms: a binary body of any of those types."""
    return {(200, content_type): OpenApiTypes.BINARY for content_type in DOWNLOAD_CONTENT_TYPES}


def served_over_asgi(request) -> bool:
    return getattr(request, "scope", None) is not None


async def _chunks_of(chunks):
    """Under ASGI Django reads a plain iterator whole into memory before sending it; this reads
    one chunk at a time instead. Reads and the final close run on one thread of the stream's own,
    in order, so a client that disconnects mid-read cannot close the stream under a running read."""
    loop = asyncio.get_running_loop()
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="attachment-stream")
    try:
        while (chunk := await loop.run_in_executor(worker, next, chunks, None)) is not None:
            yield chunk
    except Exception:
        # Storage gone mid-stream: the error ends the response and the server drops the connection,
        # the client sees a body shorter than its Content-Length. Django's ASGI handler then skips
        # response.close() and with it request_finished, which would give back the request's
        # database connection (to the pool): give it back here, on the request's thread.
        await sync_to_async(connections.close_all)()
        raise
    finally:
        worker.submit(chunks.close)
        worker.shutdown(wait=False)


def attachment_response(attachment, *, inline: bool = False, asgi: bool = False) -> StreamingHttpResponse:
    """Inline only for previewable types (PDF, images); a forced download otherwise. `asgi`: the
    request came through config.asgi, which needs an asynchronous stream."""
    file_type = files.FILE_TYPES.get(files.extension_of(attachment.original_name))
    inline = inline and bool(file_type and file_type.previewable)
    try:
        chunks = files.open_stream(attachment.file.name)
    except (OSError, BotoCoreError, ClientError) as exc:
        raise StorageUnavailable(STORAGE_UNAVAILABLE_MESSAGE) from exc
    response = StreamingHttpResponse(_chunks_of(chunks) if asgi else chunks, content_type=attachment.content_type)
    response["Content-Length"] = str(attachment.size)
    response["Content-Disposition"] = content_disposition_header(not inline, attachment.original_name)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
