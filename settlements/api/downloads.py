"""Streaming responses for attachments, shared by the staff API and the customer page."""

from botocore.exceptions import BotoCoreError, ClientError
from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header

from settlements import files
from settlements.services import STORAGE_UNAVAILABLE_MESSAGE, StorageUnavailable


def attachment_response(attachment, *, inline: bool = False) -> StreamingHttpResponse:
    """Inline only for previewable types (PDF, images); a forced download otherwise."""
    file_type = files.FILE_TYPES.get(files.extension_of(attachment.original_name))
    inline = inline and bool(file_type and file_type.previewable)
    try:
        chunks = files.open_stream(attachment.file.name)
    except (OSError, BotoCoreError, ClientError) as exc:
        raise StorageUnavailable(STORAGE_UNAVAILABLE_MESSAGE) from exc
    response = StreamingHttpResponse(chunks, content_type=attachment.content_type)
    response["Content-Length"] = str(attachment.size)
    response["Content-Disposition"] = content_disposition_header(not inline, attachment.original_name)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
