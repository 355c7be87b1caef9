"""HTTP views of export (JSON, Markdown, a zip of everything) and import; login required, own conversations only."""
from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods

from . import selectors, services_transfer
from .models import Conversation
from .transfer import archive, markdown

# "Export all" is written to memory up to this size, then to a temporary file.
SPOOL_BYTES = 8 * 1024 * 1024


def _stem(conversation: Conversation) -> str:
    """An ASCII file name (without extension) from the title and the id, safe in a header and on any disk."""
    title = slugify(conversation.title)[:50].strip("-") or "conversation"
    return f"{title}-{conversation.pk.hex[:8]}"


def _own(request: HttpRequest, conversation_id: object) -> Conversation:
    conversation = selectors.conversation_for(user=request.user, conversation_id=str(conversation_id))
    if conversation is None:
        # Someone else's conversation and one that does not exist look the same.
        raise Http404("No such conversation.")
    return conversation


def _attachment(content: str, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _dumps(document: dict) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


@require_GET
def export_json(request: HttpRequest, conversation_id: object) -> HttpResponse:
    """Download one conversation as a JSON export (docs/export-format.md)."""
    conversation = _own(request, conversation_id)
    document = selectors.conversation_export(conversation=conversation, exported_at=timezone.now())
    return _attachment(_dumps(document), f"{_stem(conversation)}.json", "application/json; charset=utf-8")


@require_GET
def export_markdown(request: HttpRequest, conversation_id: object) -> HttpResponse:
    """Download one conversation as Markdown, for reading."""
    conversation = _own(request, conversation_id)
    document = selectors.conversation_export(conversation=conversation, exported_at=timezone.now())
    return _attachment(markdown.render(document), f"{_stem(conversation)}.md", "text/markdown; charset=utf-8")


def _all_files(request: HttpRequest) -> Iterator[tuple[str, str]]:
    now = timezone.now()
    for conversation in selectors.conversations_to_export(user=request.user).iterator(chunk_size=100):
        document = selectors.conversation_export(conversation=conversation, exported_at=now)
        stem = _stem(conversation)
        yield f"conversations/{stem}.json", _dumps(document)
        yield f"conversations/{stem}.md", markdown.render(document)


@require_GET
def export_all(request: HttpRequest) -> FileResponse:
    """Download every conversation of the user as one zip: a JSON export and a Markdown file each."""
    # Spooled: small exports stay in memory, large ones go to a temporary file instead of growing the heap.
    target = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    archive.write_zip(target, _all_files(request))
    target.seek(0)
    filename = f"conversations-{timezone.now():%Y-%m-%d}.zip"
    return FileResponse(target, as_attachment=True, filename=filename, content_type="application/zip")


@require_http_methods(["GET", "POST"])
def import_conversations(request: HttpRequest) -> HttpResponse:
    """Import an uploaded JSON export or zip of exports into the user's account, all or nothing."""
    if request.method == "GET":
        return render(request, "conversations/import.html", {"errors": []})
    limit = settings.IMPORT_MAX_BYTES
    upload = request.FILES.get("file")
    if upload is None:
        errors = [_("Choose a file to import: a .json export or a .zip of exports.")]
    elif upload.size > limit:
        errors = [_("%(name)s is %(size)s bytes; the limit is %(limit)s bytes.")
                  % {"name": upload.name, "size": upload.size, "limit": limit}]
    else:
        conversations, errors = archive.parse_upload(upload.name, upload.read(limit + 1), max_bytes=limit)
    if errors:
        return render(request, "conversations/import.html", {"errors": errors}, status=400)
    try:
        result = services_transfer.conversations_import(user=request.user, conversations=conversations)
    except services_transfer.ImportRaced:
        result = services_transfer.ImportResult(created=[], duplicates=[c.original_id for c in conversations])
    if result.duplicates:
        messages.warning(request, ngettext(
            "%(count)s conversation in this file was already imported; it was not imported again.",
            "%(count)s conversations in this file were already imported; they were not imported again.",
            len(result.duplicates)) % {"count": len(result.duplicates)})
    if result.created:
        messages.success(request, ngettext(
            "Imported %(count)s conversation.", "Imported %(count)s conversations.", len(result.created))
            % {"count": len(result.created)})
    return redirect("conversations:history")
