"""Ingestion: bytes in, text with page boundaries out.

PDFs are read with pypdf in layout mode so table rows stay on one line; page
boundaries are kept as character offsets so evidence can name its page.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from pypdf import PdfReader

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


def read_pdf_pages(data: bytes) -> list[str]:
    """Text of each page, layout mode, trailing whitespace stripped per line."""
    reader = PdfReader(io.BytesIO(data))
    pages = []
    for page in reader.pages:
        text = page.extract_text(extraction_mode="layout") or ""
        pages.append("\n".join(line.rstrip() for line in text.splitlines()).strip("\n"))
    return pages


def ingest_pdf(data: bytes) -> IngestedDocument:
    pages = read_pdf_pages(data)
    text, starts = join_pages(pages)
    return IngestedDocument(
        text=text,
        media_type="application/pdf",
        page_count=len(pages),
        page_starts=starts,
        has_text_layer=bool(text.strip()),
    )
