"""Ingestion: bytes in, text with page boundaries out.

PDFs are read with pypdf in layout mode so table rows stay on one line; page
boundaries are kept as character offsets so evidence can name its page.
Plain text, e-mails (``.eml``: the body, then the pages of every attached PDF)
and JSON ``{"text": ...}`` come in through :func:`ingest`, which decides the
kind from the media type, the file name and the bytes themselves, and raises
a :mod:`service.exceptions` error a person can act on for anything it cannot
read. Pure: no Flask, no database.
"""

from __future__ import annotations

import email
import email.policy
import html
import io
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import PurePath

from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError, PdfReadError

from service.exceptions import (
    EmptyDocument,
    EncryptedPdf,
    NotAPdf,
    PayloadTooLarge,
    TooManyPages,
    UnreadableDocument,
    UnsupportedMediaType,
)

PDF = "application/pdf"
TEXT = "text/plain"
EML = "message/rfc822"
JSON = "application/json"
SUPPORTED = (PDF, TEXT, EML, JSON)

_BY_SUFFIX = {".pdf": PDF, ".txt": TEXT, ".text": TEXT, ".eml": EML, ".json": JSON}
_GENERIC = {"", "application/octet-stream", "binary/octet-stream"}

PAGE_SEPARATOR = "\n\f\n"


@dataclass
class IngestedDocument:
    text: str
    media_type: str
    page_count: int
    page_starts: list[int] = field(default_factory=lambda: [0])  # offset of each page in text
    has_text_layer: bool = True
    attachments: list[str] = field(default_factory=list)

    def page_of(self, offset: int) -> int:
        """1-based page holding character *offset*."""
        page = 1
        for i, start in enumerate(self.page_starts):
            if offset >= start:
                page = i + 1
        return page


def join_pages(pages: list[str]) -> tuple[str, list[int]]:
    starts, parts, pos = [], [], 0
    for i, page in enumerate(pages):
        if i:
            parts.append(PAGE_SEPARATOR)
            pos += len(PAGE_SEPARATOR)
        starts.append(pos)
        parts.append(page)
        pos += len(page)
    return "".join(parts), starts or [0]


def open_pdf(data: bytes, max_pages: int | None = None) -> PdfReader:
    """A reader over *data*, or the error that says why it cannot be read."""
    if not data.lstrip()[:1024].startswith(b"%PDF-") and b"%PDF-" not in data[:1024]:
        raise NotAPdf("The file is named or declared as a PDF but does not start with a PDF header.")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            # An empty user password is common and opens without asking anyone.
            try:
                ok = reader.decrypt("")
            except Exception:  # unsupported algorithms raise rather than answer
                ok = 0
            if not ok:
                raise EncryptedPdf("The PDF is password-protected; send it without encryption.")
        count = len(reader.pages)
    except EncryptedPdf:
        raise
    except FileNotDecryptedError:
        raise EncryptedPdf("The PDF is password-protected; send it without encryption.") from None
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        raise UnreadableDocument(f"The PDF is damaged and cannot be read ({type(exc).__name__}).") from None
    if count == 0:
        raise UnreadableDocument("The PDF has no pages.")
    if max_pages is not None and count > max_pages:
        raise TooManyPages(
            f"The PDF has {count} pages; at most {max_pages} are accepted.", pages=count, max_pages=max_pages
        )
    return reader


def read_pdf_pages(data: bytes, max_pages: int | None = None) -> list[str]:
    """Text of each page, layout mode, trailing whitespace stripped per line."""
    reader = open_pdf(data, max_pages)
    pages = []
    try:
        for page in reader.pages:
            text = page.extract_text(extraction_mode="layout") or ""
            pages.append("\n".join(line.rstrip() for line in text.splitlines()).strip("\n"))
    except Exception as exc:  # pypdf raises many kinds on damaged content streams
        raise UnreadableDocument(f"The PDF is damaged and cannot be read ({type(exc).__name__}).") from None
    return pages


def ingest_pdf(data: bytes, max_pages: int | None = None) -> IngestedDocument:
    pages = read_pdf_pages(data, max_pages)
    text, starts = join_pages(pages)
    return IngestedDocument(
        text=text,
        media_type="application/pdf",
        page_count=len(pages),
        page_starts=starts,
        has_text_layer=bool(text.strip()),
    )


# --- plain text, e-mail, JSON ------------------------------------------------


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), else Windows-1252, which decodes any byte."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    if "\x00" in text:
        raise UnreadableDocument("The file looks binary, not text.")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def ingest_text(text: str, media_type: str = TEXT) -> IngestedDocument:
    if not text.strip():
        raise EmptyDocument("The document holds no text.")
    return IngestedDocument(text=text, media_type=media_type, page_count=1, page_starts=[0])


def ingest_json(data: bytes) -> IngestedDocument:
    try:
        payload = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise UnreadableDocument('The JSON document is not valid JSON; send {"text": "..."}.') from None
    if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
        raise UnreadableDocument('A JSON document must be an object with a string "text".')
    doc = ingest_text(payload["text"])
    doc.media_type = JSON
    return doc


_TAG = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.S | re.I)


def _html_to_text(markup: str) -> str:
    markup = re.sub(r"<br\s*/?>|</p>|</div>|</tr>", "\n", markup, flags=re.I)
    return html.unescape(_TAG.sub("", markup))


def ingest_eml(data: bytes, max_pages: int | None = None) -> IngestedDocument:
    """The message's headers and body as page 1, then the pages of each attached PDF."""
    try:
        msg = email.message_from_bytes(data, policy=email.policy.default)
    except Exception:
        raise UnreadableDocument("The e-mail cannot be parsed.") from None
    if not msg.keys():
        raise UnreadableDocument("The file is not an e-mail message (no headers).")
    head = [f"{name}: {msg[name]}" for name in ("From", "To", "Date", "Subject") if msg[name]]
    body_part = msg.get_body(preferencelist=("plain", "html"))
    body = ""
    if body_part is not None:
        body = body_part.get_content()
        if body_part.get_content_type() == "text/html":
            body = _html_to_text(body)
    first = "\n".join(head) + ("\n\n" if head else "") + body.replace("\r\n", "\n").strip("\n")
    pages, attachments = [first.rstrip()], []
    for part in msg.iter_attachments():
        name = part.get_filename() or ""
        is_pdf = part.get_content_type() == PDF or name.lower().endswith(".pdf")
        if not is_pdf:
            continue
        payload = part.get_payload(decode=True) or b""
        budget = None if max_pages is None else max_pages - len(pages)
        if budget is not None and budget <= 0:
            raise TooManyPages(f"The e-mail and its attachments exceed {max_pages} pages.", max_pages=max_pages)
        try:
            pdf_pages = read_pdf_pages(payload, budget)
        except TooManyPages:
            raise TooManyPages(f"The e-mail and its attachments exceed {max_pages} pages.", max_pages=max_pages) from None
        except UnreadableDocument as exc:
            raise type(exc)(f"Attachment {name or 'unnamed'}: {exc.detail}") from None
        pages.extend(pdf_pages)
        attachments.append(name or "attachment.pdf")
    if not any(p.strip() for p in pages) and not attachments:
        raise EmptyDocument("The e-mail has no body and no PDF attachment.")
    text, starts = join_pages(pages)
    return IngestedDocument(
        text=text,
        media_type=EML,
        page_count=len(pages),
        page_starts=starts,
        has_text_layer=bool(text.strip()),
        attachments=attachments,
    )


def detect_media_type(data: bytes, filename: str | None = None, declared: str | None = None) -> str:
    """The kind of document: what the name says, then what the sender declared, then the bytes.

    A file named ``.pdf`` (or declared ``application/pdf``) stays a PDF even when
    its bytes are not, so that :func:`open_pdf` can say so.
    """
    declared = (declared or "").split(";")[0].strip().lower()
    suffix = PurePath(filename or "").suffix.lower()
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    if declared in SUPPORTED:
        return declared
    if declared.startswith("text/") and declared not in ("text/html",):
        return TEXT
    if declared in _GENERIC:
        head = data.lstrip()[:1024]
        if head.startswith(b"%PDF-"):
            return PDF
        if head.startswith(b"{"):
            return JSON
        if re.match(rb"^(From|To|Subject|Date|Received|Return-Path|MIME-Version|Message-ID):", head, re.I):
            return EML
    raise UnsupportedMediaType(
        f"Cannot read {declared or 'this kind of file'}"
        + (f" ({filename})" if filename else "")
        + "; send a PDF, plain text, an .eml e-mail or JSON {\"text\": ...}.",
        supported=list(SUPPORTED),
    )


def ingest(
    data: bytes,
    filename: str | None = None,
    media_type: str | None = None,
    *,
    max_bytes: int | None = None,
    max_pages: int | None = None,
) -> IngestedDocument:
    """Read any supported document, enforcing the size and page limits."""
    if not data or not data.strip():
        raise EmptyDocument("The request carried no document: the body is empty.")
    if max_bytes is not None and len(data) > max_bytes:
        raise PayloadTooLarge(
            f"The document is {len(data)} bytes; at most {max_bytes} are accepted.", max_bytes=max_bytes
        )
    kind = detect_media_type(data, filename, media_type)
    if kind == PDF:
        doc = ingest_pdf(data, max_pages)
        if not doc.has_text_layer:
            logging.getLogger(__name__).info("PDF without a text layer accepted (%s)", filename)
        return doc
    if kind == EML:
        return ingest_eml(data, max_pages)
    if kind == JSON:
        return ingest_json(data)
    return ingest_text(decode_text(data))
