"""Ingestion: bytes in, text with page boundaries out.

PDFs are read with pypdf in layout mode so table rows stay on one line; page
boundaries are kept as character offsets so evidence can name its page.
Plain text, e-mails (``.eml``: the body, then the pages of every attached PDF)
and JSON ``{"text": ...}`` come in through :func:`ingest`, which decides the
kind from the media type, the file name and the bytes themselves, and raises
a :mod:`service.exceptions` error a person can act on for anything it cannot
read. Pure: no Flask, no database.

A PDF from outside is read under :class:`PdfLimits`: in a forked child with a
time limit and a memory cap (:mod:`service.sandbox`), with pypdf's stream
limits lowered to ours, and refused with the reason when it is a
decompression bomb, nests objects too deep, declares or holds too many pages,
has a page of impossible size or more text than is read.
"""

from __future__ import annotations

import email
import email.policy
import html
import io
import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from pypdf import PdfReader, apply_configuration
from pypdf.errors import FileNotDecryptedError, LimitReachedError

from service.exceptions import (
    DocketError,
    EmptyDocument,
    EncryptedPdf,
    NotAPdf,
    PageSizeOutOfRange,
    PayloadTooLarge,
    PdfTooComplex,
    PdfTooLarge,
    TooManyPages,
    UnreadableDocument,
    UnsupportedMediaType,
)
from service.sandbox import call_in_child

PDF = "application/pdf"
TEXT = "text/plain"
EML = "message/rfc822"
JSON = "application/json"
SUPPORTED = (PDF, TEXT, EML, JSON)

_BY_SUFFIX = {".pdf": PDF, ".txt": TEXT, ".text": TEXT, ".eml": EML, ".json": JSON}
_GENERIC = {"", "application/octet-stream", "binary/octet-stream"}

PAGE_SEPARATOR = "\n\f\n"
PDF_MAX_PAGE_SIDE_PT = 14_400.0  # ISO 32000-1 Annex C: a page is at most 200 inches a side


@dataclass(frozen=True)
class PdfLimits:
    """What reading one PDF may cost; past any limit it is refused, saying which.

    With *timeout_s* the parse runs in a forked child that is killed at the
    limit and may add at most *memory_mb* MiB; without it the parse runs in
    this process, for PDFs Docket made itself.
    """

    timeout_s: float | None = None
    memory_mb: int | None = None
    max_stream_bytes: int | None = None  # decoded size of one stream (FlateDecode and the other filters)
    max_text_chars: int | None = None
    max_page_side_pt: float = PDF_MAX_PAGE_SIDE_PT
    max_nesting: int = 100  # arrays and dictionaries in one another; real files stay under 20

    @classmethod
    def from_settings(cls, settings: Any) -> PdfLimits:
        """The limits a :class:`config.settings.Settings` names."""
        return cls(
            timeout_s=settings.pdf_parse_timeout_s or None,
            memory_mb=settings.pdf_parse_memory_mb or None,
            max_stream_bytes=settings.pdf_max_stream_bytes,
            max_text_chars=settings.max_text_chars,
            max_page_side_pt=settings.pdf_max_page_side_pt,
        )

    def pypdf_overrides(self) -> dict[str, int]:
        """pypdf's own decoding limits, lowered to *max_stream_bytes*."""
        if self.max_stream_bytes is None:
            return {}
        names = ("zlib_maximum_output_length", "lzw_maximum_output_length", "run_length_maximum_output_length",
                 "brotli_maximum_output_length", "jbig2_maximum_output_length", "maximum_declared_stream_length",
                 "array_based_stream_maximum_output_length")
        return {name: self.max_stream_bytes for name in names}


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


def open_pdf(data: bytes, max_pages: int | None = None, max_nesting: int | None = None) -> PdfReader:
    """A reader over *data*, or the error that says why it cannot be read."""
    if not data.lstrip()[:1024].startswith(b"%PDF-") and b"%PDF-" not in data[:1024]:
        raise NotAPdf("The file is named or declared as a PDF but does not start with a PDF header.")
    if max_nesting is not None and nested_deeper_than(data, max_nesting):
        raise PdfTooComplex(f"The PDF nests arrays or dictionaries more than {max_nesting} levels deep.",
                            max_nesting=max_nesting)
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
        declared = declared_page_count(reader)
        if max_pages is not None and declared > max_pages:
            raise TooManyPages(f"The PDF declares {declared} pages; at most {max_pages} are accepted.",
                               pages=declared, max_pages=max_pages)
        count = len(reader.pages)
    except DocketError:
        raise
    except FileNotDecryptedError:
        raise EncryptedPdf("The PDF is password-protected; send it without encryption.") from None
    except Exception as exc:  # pypdf raises many kinds on damaged files
        raise unreadable(exc) from None
    if count == 0:
        raise UnreadableDocument("The PDF has no pages.")
    if max_pages is not None and count > max_pages:
        raise TooManyPages(
            f"The PDF has {count} pages; at most {max_pages} are accepted.", pages=count, max_pages=max_pages
        )
    return reader


_STRING = re.compile(rb"\((?:\\.|[^\\()])*\)", re.S)  # innermost literal strings
_HEX_STRING = re.compile(rb"(?<!<)<[0-9A-Fa-f\s]*>")
_COMMENT = re.compile(rb"%[^\r\n]*")
_NOT_A_BRACKET = bytes(b for b in range(256) if b not in b"[]")


def nested_deeper_than(data: bytes, limit: int) -> bool:
    """Whether arrays and dictionaries outside streams nest more than *limit* deep, from the raw bytes.

    pypdf recurses per level and, past Python's recursion limit, quietly drops
    what it could not parse; counting first refuses such a file with the reason.
    Streams, strings and comments are left out; the count is of matched pairs.
    """
    body = without_streams(data)
    for _ in range(4):  # a string may hold balanced parentheses: innermost first
        body, found = _STRING.subn(b" ", body)
        if not found:
            break
    body = _COMMENT.sub(b" ", _HEX_STRING.sub(b" ", body))
    brackets = body.replace(b"<<", b"[").replace(b">>", b"]").translate(None, _NOT_A_BRACKET)
    for _ in range(limit):  # each pass takes away the innermost pairs: one level
        if b"[]" not in brackets:
            return False
        brackets = brackets.replace(b"[]", b"")
    return b"[]" in brackets


def without_streams(data: bytes) -> bytes:
    """*data* with every ``stream ... endstream`` body taken out (to the end, where one is not closed)."""
    parts, pos = [], 0
    while (start := data.find(b"stream", pos)) >= 0:
        if start and data[start - 1 : start].isalpha():  # "endstream", or a word that ends in "stream"
            parts.append(data[pos : start + 6])
            pos = start + 6
            continue
        parts.append(data[pos:start])
        end = data.find(b"endstream", start + 6)
        pos = len(data) if end < 0 else end + 9
    parts.append(data[pos:])
    return b" ".join(parts)


def declared_page_count(reader: PdfReader) -> int:
    """The /Count the page tree claims (0 when it claims nothing usable); pypdf itself counts the pages."""
    try:
        count = reader.trailer["/Root"].get_object()["/Pages"].get_object().get("/Count")
        return int(count) if isinstance(count, int) else 0
    except Exception:  # a damaged tree: the real count (len(reader.pages)) says what is wrong
        return 0


def unreadable(exc: BaseException) -> DocketError:
    """The error that says why pypdf gave up, looking through the exceptions it chained."""
    chain, seen = [], exc
    while seen is not None and len(chain) < 20:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for cause in chain:
        if isinstance(cause, LimitReachedError) and "decompress" in str(cause).lower():
            return PdfTooLarge(f"The PDF is a decompression bomb: a stream inflates past the limit ({cause})")
        if isinstance(cause, LimitReachedError):
            return PdfTooComplex(f"The PDF's structure goes past what is read safely ({cause})")
        if isinstance(cause, RecursionError):
            return PdfTooComplex("The PDF nests objects (arrays or dictionaries) too deeply to be read.")
        if isinstance(cause, MemoryError):
            return PdfTooLarge("Reading the PDF needs more memory than a document may use.")
    return UnreadableDocument(f"The PDF is damaged and cannot be read ({type(exc).__name__}).")


def check_page_size(page: Any, number: int, max_side: float) -> None:
    """Refuse a page with a side longer than *max_side* points, or one that is not a number."""
    box = page.mediabox
    width, height = abs(float(box.width)), abs(float(box.height))
    if not (math.isfinite(width) and math.isfinite(height)) or max(width, height) > max_side:
        raise PageSizeOutOfRange(
            f"Page {number} measures {width:g} x {height:g} points; a side may be at most {max_side:g} "
            "(200 inches, PDF's own limit).", page=number, max_side_pt=max_side,
        )


def read_pdf_pages(data: bytes, max_pages: int | None = None, limits: PdfLimits | None = None) -> list[str]:
    """Text of each page, layout mode, trailing whitespace stripped per line, under *limits*."""
    limits = limits or PdfLimits()
    if not limits.timeout_s:
        return _read_pages(data, max_pages, limits)
    try:
        return call_in_child(_read_pages_quietly, data, max_pages, limits,
                             timeout_s=limits.timeout_s, memory_mb=limits.memory_mb)
    except TimeoutError:
        raise PdfTooComplex(f"Reading the PDF took longer than {limits.timeout_s:g} seconds, the limit per "
                            "document.", timeout_s=limits.timeout_s) from None
    except MemoryError:
        raise PdfTooLarge(f"Reading the PDF needs more than {limits.memory_mb} MiB of memory, the limit per "
                          "document.", max_memory_mb=limits.memory_mb) from None
    except ChildProcessError:
        raise PdfTooComplex("Reading the PDF crashed the PDF parser.") from None


def _read_pages_quietly(data: bytes, max_pages: int | None, limits: PdfLimits) -> list[str]:
    """:func:`_read_pages` in the child: pypdf's warnings about a hostile file would flood the log."""
    logging.getLogger("pypdf").setLevel(logging.CRITICAL)
    return _read_pages(data, max_pages, limits)


def _read_pages(data: bytes, max_pages: int | None, limits: PdfLimits) -> list[str]:
    with apply_configuration(**limits.pypdf_overrides()):
        reader = open_pdf(data, max_pages, limits.max_nesting)
        pages, chars = [], 0
        try:
            for number, page in enumerate(reader.pages, 1):
                check_page_size(page, number, limits.max_page_side_pt)
                text = page.extract_text(extraction_mode="layout") or ""
                pages.append("\n".join(line.rstrip() for line in text.splitlines()).strip("\n"))
                chars += len(pages[-1])
                if limits.max_text_chars is not None and chars > limits.max_text_chars:
                    raise PdfTooLarge(f"The PDF holds more than {limits.max_text_chars} characters of text, the "
                                      "limit per document.", max_text_chars=limits.max_text_chars)
        except DocketError:
            raise
        except Exception as exc:  # pypdf raises many kinds on damaged content streams
            raise unreadable(exc) from None
    return pages


def ingest_pdf(data: bytes, max_pages: int | None = None, limits: PdfLimits | None = None) -> IngestedDocument:
    pages = read_pdf_pages(data, max_pages, limits)
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


def ingest_eml(data: bytes, max_pages: int | None = None, pdf_limits: PdfLimits | None = None) -> IngestedDocument:
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
            pdf_pages = read_pdf_pages(payload, budget, pdf_limits)
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
    pdf_limits: PdfLimits | None = None,
) -> IngestedDocument:
    """Read any supported document, enforcing the size and page limits (and *pdf_limits* on every PDF)."""
    if not data or not data.strip():
        raise EmptyDocument("The request carried no document: the body is empty.")
    if max_bytes is not None and len(data) > max_bytes:
        raise PayloadTooLarge(
            f"The document is {len(data)} bytes; at most {max_bytes} are accepted.", max_bytes=max_bytes
        )
    kind = detect_media_type(data, filename, media_type)
    if kind == PDF:
        doc = ingest_pdf(data, max_pages, pdf_limits)
        if not doc.has_text_layer:
            logging.getLogger(__name__).info("PDF without a text layer accepted (%s)", filename)
        return doc
    if kind == EML:
        return ingest_eml(data, max_pages, pdf_limits)
    if kind == JSON:
        return ingest_json(data)
    return ingest_text(decode_text(data))
