"""Upload handling: refuse oversized uploads while the body streams in, before they fill a disk."""

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload

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
