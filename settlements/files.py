"""Attachment file rules: allowed extensions, content signatures, safe names, storage keys,
and streaming reads from the configured storage."""

import os
import re
import secrets
import unicodedata
from dataclasses import dataclass

from django.core.files.storage import default_storage
from django.utils import timezone


@dataclass(frozen=True)
class FileType:
    content_type: str
    # Accepted leading bytes; None means "text": no NUL bytes and no binary signature.
    signatures: tuple[bytes, ...] | None
    previewable: bool = False


_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")
FILE_TYPES: dict[str, FileType] = {
    ".pdf": FileType("application/pdf", (b"%PDF-",), previewable=True),
    ".doc": FileType("application/msword", (_OLE,)),
    ".docx": FileType("application/vnd.openxmlformats-officedocument.wordprocessingml.document", _ZIP),
    ".odt": FileType("application/vnd.oasis.opendocument.text", _ZIP),
    ".xls": FileType("application/vnd.ms-excel", (_OLE,)),
    ".xlsx": FileType("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", _ZIP),
    ".ods": FileType("application/vnd.oasis.opendocument.spreadsheet", _ZIP),
    ".csv": FileType("text/csv", None),
    ".txt": FileType("text/plain", None),
    ".md": FileType("text/markdown", None),
    ".rtf": FileType("application/rtf", (b"{\\rtf",)),
    ".png": FileType("image/png", (b"\x89PNG\r\n\x1a\n",), previewable=True),
    ".jpg": FileType("image/jpeg", (b"\xff\xd8\xff",), previewable=True),
    ".jpeg": FileType("image/jpeg", (b"\xff\xd8\xff",), previewable=True),
    ".webp": FileType("image/webp", (b"RIFF",), previewable=True),
    ".gif": FileType("image/gif", (b"GIF87a", b"GIF89a"), previewable=True),
    ".zip": FileType("application/zip", _ZIP),
    ".7z": FileType("application/x-7z-compressed", (b"7z\xbc\xaf\x27\x1c",)),
}
ALLOWED_EXTENSIONS = tuple(FILE_TYPES)
# Leading bytes of formats that are never text (executables, archives, images, documents).
_BINARY_SIGNATURES = (b"MZ", b"\x7fELF", b"\xca\xfe\xba\xbe", b"\xcf\xfa\xed\xfe", *_ZIP, _OLE, b"%PDF-",
                      b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"7z\xbc\xaf")
SNIFF_BYTES = 8192


def extension_of(filename: str) -> str:
    return os.path.splitext(filename)[1].lower()


def content_matches(extension: str, head: bytes) -> bool:
    """Does the start of the file agree with its extension (where the format has a signature)?"""
    file_type = FILE_TYPES[extension]
    if file_type.signatures is None:
        return b"\x00" not in head and not head.startswith(_BINARY_SIGNATURES)
    if extension == ".webp":
        return head.startswith(b"RIFF") and head[8:12] == b"WEBP"
    return head.startswith(file_type.signatures)


KEPT_JOINERS = {"\u200c", "\u200d"}  # ZWNJ, ZWJ


def sanitize_filename(filename: str) -> str:
    """A display name safe for headers and file systems; the storage key never uses it."""
    name = unicodedata.normalize("NFC", os.path.basename(filename.replace("\\", "/")))
    # Invisible format characters go: a right-to-left override would show "invoice\u202efdp.exe"
    # as "invoiceexe.pdf", and zero-width ones make look-alike names. The zero-width (non-)joiners
    # stay: Persian and Indic spellings and emoji sequences need them.
    name = "".join(char for char in name
                   if char in KEPT_JOINERS or unicodedata.category(char) not in ("Cf", "Zl", "Zp"))
    name = re.sub(r"[\x00-\x1f\x7f-\x9f\"<>:|?*/]", "_", name).strip(" .")
    stem, extension = os.path.splitext(name)
    return (stem[: 255 - len(extension)] or "file") + extension.lower()


def storage_key(settlement_id: int, extension: str) -> str:
    now = timezone.now()
    return f"settlements/{settlement_id}/{now:%Y}/{now:%m}/{secrets.token_hex(16)}{extension}"


CHUNK_SIZE = 256 * 1024


def store_upload(key: str, uploaded, content_type: str) -> str:
    """Save an uploaded file under `key` and return its stored name.

    A large upload is already spooled to a temporary file; S3 gets it by path, because
    s3transfer reads a file *object*'s parts into memory ahead of sending them, while from a
    path it reads each part from disk as it goes. Everything else uses the storage's own save.
    """
    storage = default_storage
    if hasattr(storage, "bucket") and hasattr(uploaded, "temporary_file_path"):
        from storages.utils import clean_name

        name = clean_name(key)
        storage.bucket.Object(storage._normalize_name(name)).upload_file(
            uploaded.temporary_file_path(), ExtraArgs={"ContentType": content_type},
            Config=storage.transfer_config,
        )
        return name
    return storage.save(key, uploaded)


def open_stream(name: str):
    """Open a stored file for streaming (S3 or local disk) and return an iterator of chunks.

    Opening happens now, so a missing object or an unreachable storage fails before a response
    starts; the chunks are read lazily and the file is never held whole in memory.
    """
    storage = default_storage
    if hasattr(storage, "bucket"):
        body = storage.bucket.Object(storage._normalize_name(name)).get()["Body"]
        return _closing(body.iter_chunks(CHUNK_SIZE), body)
    handle = storage.open(name, "rb")
    return _closing(handle.chunks(CHUNK_SIZE), handle)


def _closing(chunks, resource):
    try:
        yield from chunks
    finally:
        resource.close()
