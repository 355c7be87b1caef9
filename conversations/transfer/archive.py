"""Reading an uploaded export (one JSON file or a zip of them) into decoded documents, within size bounds."""
from __future__ import annotations

import dataclasses
import io
import json
import zipfile
import zlib
from collections.abc import Iterable
from typing import IO, Any

from django.utils.translation import gettext as _

from .format import MAX_ERRORS, ImportedConversation, check_document, more_problems

# A zip may hold this many times the upload limit once unpacked (JSON packs about ten to one).
UNPACKED_FACTOR = 5
MAX_MEMBERS = 1000


class UploadError(Exception):
    """The upload cannot be read at all; the message says why in plain words."""


@dataclasses.dataclass(frozen=True)
class Document:
    """One decoded JSON document and the name it had in the upload."""

    name: str
    value: Any


def printable(name: str) -> str:
    """A file name as it may appear in a message: no control characters, not overly long."""
    return "".join(ch if ch.isprintable() else "?" for ch in name[:120])


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON, and PostgreSQL's jsonb refuses them.
    raise ValueError(f"{name} is not allowed")


def decode_json(name: str, data: bytes) -> Document:
    """Decode one JSON file, or raise UploadError naming the file and what is wrong with it."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UploadError(_("%(name)s is not UTF-8 text (byte %(offset)s)") % {"name": name, "offset": exc.start}) from None
    try:
        return Document(name, json.loads(text, parse_constant=_refuse_constant))
    except json.JSONDecodeError as exc:
        raise UploadError(_("%(name)s is not valid JSON: %(problem)s at line %(line)s, column %(column)s")
                          % {"name": name, "problem": exc.msg, "line": exc.lineno, "column": exc.colno}) from None
    except (ValueError, RecursionError):
        # Numbers too long to convert, NaN, or nesting deeper than the parser goes.
        raise UploadError(_("%(name)s is not valid JSON") % {"name": name}) from None


def is_zip(data: bytes) -> bool:
    """Whether the bytes start like a zip archive."""
    return data[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def read_zip(name: str, data: bytes, *, max_bytes: int) -> list[Document]:
    """Every .json member of a zip, decoded; members over `max_bytes` or too much unpacked in all are refused."""
    budget = max_bytes * UNPACKED_FACTOR
    documents = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [m for m in archive.infolist() if not m.is_dir() and m.filename.lower().endswith(".json")]
            if len(members) > MAX_MEMBERS:
                raise UploadError(_("%(name)s holds more than %(count)s files") % {"name": name, "count": MAX_MEMBERS})
            if not members:
                raise UploadError(_("%(name)s holds no .json exports") % {"name": name})
            for member in members:
                # The sizes in the zip's directory can lie: read at most one byte past the limit and check that.
                limit = min(max_bytes, budget)
                with archive.open(member) as stream:
                    content = stream.read(limit + 1)
                if len(content) > limit:
                    raise UploadError(_("%(name)s: %(member)s is too large once unpacked")
                                      % {"name": name, "member": printable(member.filename)})
                budget -= len(content)
                documents.append(decode_json(f"{name}: {printable(member.filename)}", content))
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError, ValueError):
        # Corrupt, encrypted, or packed with a method zipfile does not read.
        raise UploadError(_("%(name)s is not a zip archive this app can read") % {"name": name}) from None
    return documents


def read_upload(name: str, data: bytes, *, max_bytes: int) -> list[Document]:
    """The documents of an upload: a zip of exports or one JSON export."""
    if len(data) > max_bytes:
        raise UploadError(_("%(name)s is larger than the limit of %(limit)s bytes") % {"name": name, "limit": max_bytes})
    if is_zip(data):
        return read_zip(name, data, max_bytes=max_bytes)
    return [decode_json(name, data)]


def write_zip(target: IO[bytes], files: Iterable[tuple[str, str]]) -> None:
    """Write named text files into `target` as a deflated zip archive, one file at a time."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for filename, text in files:
            archive.writestr(filename, text)


def parse_upload(name: str, data: bytes, *, max_bytes: int) -> tuple[list[ImportedConversation], list[str]]:
    """Every conversation of an upload, checked; or no conversations and every problem with where it is."""
    name = printable(name)
    try:
        documents = read_upload(name, data, max_bytes=max_bytes)
    except UploadError as exc:
        return [], [str(exc)]
    several = len(documents) > 1 or is_zip(data)
    conversations: list[ImportedConversation] = []
    errors: list[str] = []
    count = 0
    seen: dict[str, str] = {}
    for document in documents:
        conversation, problems, found = check_document(document.value)
        # In a zip each problem also says which member it is in.
        errors.extend(f"{document.name}: {p}" if several else p for p in problems[:MAX_ERRORS - len(errors)])
        count += found
        if conversation is None:
            continue
        if conversation.original_id in seen:
            count += 1
            if len(errors) < MAX_ERRORS:
                errors.append(_("%(name)s: conversation.id: %(id)s is also the id in %(other)s") % {
                    "name": document.name, "id": conversation.original_id, "other": seen[conversation.original_id]})
            continue
        seen[conversation.original_id] = document.name
        conversations.append(conversation)
    return ([], more_problems(errors, count)) if count else (conversations, [])
