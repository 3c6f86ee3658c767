"""Upload handling: refuse oversized uploads while the body streams in, before they fill a disk."""

import json

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload

from core.middleware import body_too_large_payload

# Room for multipart boundaries and the small form fields around one file.
MULTIPART_SLACK = 64 * 1024


def content_length_too_large(request) -> bool:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    return length > max_upload_bytes() + MULTIPART_SLACK


def upload_too_large(request) -> bool:
    return content_length_too_large(request) or getattr(request, "upload_too_large", False)


def max_upload_bytes() -> int:
    return settings.SETTLEMENT_ATTACHMENT_MAX_BYTES


class SizeLimitedUploadHandler(FileUploadHandler):
    """First in the handler chain: counts the bytes of each file and stops the upload the moment
    one exceeds the limit (views refuse a Content-Length far beyond it before reading at all)."""

    def new_file(self, *args, **kwargs):
        self._received = 0
        return super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data, start):
        self._received += len(raw_data)
        if self._received > max_upload_bytes():
            self.request.upload_too_large = True
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size):
        return None


FILE_TOO_LARGE_MESSAGE = "The request is larger than the {limit} MB a file may have; nothing was saved."


def limit_request_body(app):
    """ASGI middleware for Django's requests. Django's ASGI handler reads a whole body to disk
    before any view runs, so views cannot refuse an oversized upload early as they do under
    WSGI; this answers 413 from the Content-Length, or as soon as a body without one grows past
    the limit, and tells Django the client went away."""

    async def guarded(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        headers = dict(scope.get("headers") or ())
        limit, code = _body_limit(headers.get(b"content-type", b""))
        declared = headers.get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > limit:
            return await _refuse(send, code)
        received = 0
        refused = False

        async def counting_receive():
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            received += len(message.get("body", b""))
            if message["type"] == "http.request" and received > limit:
                refused = True
                await _refuse(send, code)
                return {"type": "http.disconnect"}
            return message

        return await app(scope, counting_receive, send)

    return guarded


def _body_limit(content_type: bytes) -> tuple[int, str]:
    """Files come as multipart and may be as large as an attachment; any other body (JSON, a
    url-encoded form) is read into memory whole, so it gets Django's DATA_UPLOAD_MAX_MEMORY_SIZE
    (core.middleware.limit_request_size answers the same from a Content-Length under WSGI),
    unless the file limit is the smaller one."""
    file_limit, memory_limit = max_upload_bytes() + MULTIPART_SLACK, settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if content_type.lower().startswith(b"multipart/") or memory_limit is None or file_limit <= memory_limit:
        return file_limit, "file_too_large"
    return memory_limit, "request_too_large"


async def _refuse(send, code: str = "file_too_large") -> None:
    if code == "file_too_large":
        payload = {"code": code, "detail": FILE_TOO_LARGE_MESSAGE.format(limit=max_upload_bytes() // (1024 * 1024))}
    else:
        payload = body_too_large_payload()
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
