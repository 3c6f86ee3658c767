"""Streaming responses for attachments, shared by the staff API and the customer page."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import BotoCoreError, ClientError
from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header

from settlements import files
from settlements.services import STORAGE_UNAVAILABLE_MESSAGE, StorageUnavailable


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
