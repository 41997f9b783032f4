"""Drawing primitives over fpdf2, in millimetres, with the PDF core fonts.

Core fonts keep files small and rendering fast; they print cp1252, which
covers the four languages and the euro sign (zloty's "zł" is printed as PLN).
Text is fitted to its cell by measuring, never wrapped, because a wrapped cell
would split a value across lines in the extracted text.
"""

from __future__ import annotations

from dataclasses import dataclass

from fpdf import FPDF


@dataclass
class Col:
    header: str
    width: float
    align: str = "L"   # "L" | "R" | "C"


class Canvas:
    def __init__(self, font: str = "helvetica", size: float = 9.5, page_format: str = "A4"):
        self.pdf = FPDF(format=page_format, unit="mm")
        self.pdf.core_fonts_encoding = "windows-1252"
        self.pdf.set_auto_page_break(False)
        self.pdf.set_margins(15, 15, 15)
        self.pdf.set_creator("Docket synth")
        self.pdf.set_creation_date(__import__("datetime").datetime(2024, 1, 1, tzinfo=__import__("datetime").timezone.utc))
        self.family = font
        self.size = size
        self.pdf.add_page()
        self.font()

    # geometry --------------------------------------------------------------
    @property
    def width(self) -> float:
        return self.pdf.w

    @property
    def height(self) -> float:
        return self.pdf.h

    @property
    def left(self) -> float:
        return self.pdf.l_margin

    @property
    def right(self) -> float:
        return self.pdf.w - self.pdf.r_margin

    def new_page(self) -> None:
        self.pdf.add_page()
        self.font()

    # text ------------------------------------------------------------------
    def font(self, style: str = "", size: float | None = None, family: str | None = None) -> None:
        self.pdf.set_font(family or self.family, style, size or self.size)

    def measure(self, text: str) -> float:
        return self.pdf.get_string_width(text)

    def fit(self, text: str, width: float) -> str:
        """Shorten *text* (at a word boundary when possible) until it fits *width*."""
        if self.measure(text) <= width - 1:
            return text
        words = text.split(" ")
        while len(words) > 1 and self.measure(" ".join(words)) > width - 1:
            words.pop()
        text = " ".join(words).rstrip(",;-")
        while text and self.measure(text) > width - 1:
            text = text[:-1]
        return text

    def text(self, x: float, y: float, s: str, w: float = 0, align: str = "L", h: float = 5,
             style: str = "", size: float | None = None, border: int | str = 0, fill: bool = False) -> None:
        self.font(style, size)
        self.pdf.set_xy(x, y)
        if w == 0:
            w = self.measure(s) + 2
        self.pdf.cell(w, h, s, border=border, align=align, fill=fill)
        self.font()

    def lines(self, x: float, y: float, rows: list[str], w: float = 0, align: str = "L", lh: float = 4.6,
              style: str = "", size: float | None = None) -> float:
        """Print *rows* one under another; return the y below the block."""
        for i, row in enumerate(rows):
            self.text(x, y + i * lh, row, w=w, align=align, h=lh, style=style, size=size)
        return y + len(rows) * lh

    def kv(self, x: float, y: float, pairs: list[tuple[str, str]], label_w: float, value_w: float,
           lh: float = 5, value_align: str = "L", sep: str = ":", bold_label: bool = False) -> float:
        """A key/value block such as "Invoice date: 14/03/2024"."""
        for i, (k, v) in enumerate(pairs):
            self.text(x, y + i * lh, f"{k}{sep}" if sep else k, w=label_w, h=lh, style="B" if bold_label else "")
            self.text(x + label_w, y + i * lh, v, w=value_w, h=lh, align=value_align)
        return y + len(pairs) * lh

    def hline(self, y: float, x1: float | None = None, x2: float | None = None, width: float = 0.2) -> None:
        self.pdf.set_line_width(width)
        self.pdf.line(x1 if x1 is not None else self.left, y, x2 if x2 is not None else self.right, y)

    def rect(self, x: float, y: float, w: float, h: float, fill_gray: int | None = None) -> None:
        if fill_gray is not None:
            self.pdf.set_fill_color(fill_gray)
            self.pdf.rect(x, y, w, h, style="F")
        else:
            self.pdf.set_line_width(0.2)
            self.pdf.rect(x, y, w, h)

    # tables ----------------------------------------------------------------
    def table(self, x: float, y: float, cols: list[Col], rows: list[list[str]], style: str = "bordered",
              row_h: float = 6, header: bool = True) -> float:
        """Draw a table; *style* is bordered | borderless | header_fill | rules | zebra. Returns y below."""
        border = 1 if style == "bordered" else 0
        if header:
            if style in ("header_fill", "zebra"):
                self.pdf.set_fill_color(220)
            self.font("B")
            cx = x
            for c in cols:
                self.pdf.set_xy(cx, y)
                self.pdf.cell(c.width, row_h, self.fit(c.header, c.width), border=border, align=c.align,
                              fill=style in ("header_fill", "zebra"))
                cx += c.width
            self.font()
            if style in ("rules", "borderless"):
                self.hline(y + row_h, x, x + sum(c.width for c in cols), 0.3)
            y += row_h
        for r, row in enumerate(rows):
            fill = style == "zebra" and r % 2 == 1
            if fill:
                self.pdf.set_fill_color(240)
            cx = x
            for c, cell in zip(cols, row):
                self.pdf.set_xy(cx, y)
                self.pdf.cell(c.width, row_h, cell, border=border, align=c.align, fill=fill)
                cx += c.width
            y += row_h
            if style == "rules":
                self.hline(y, x, x + sum(c.width for c in cols), 0.1)
        return y

    def output(self) -> bytes:
        return bytes(self.pdf.output())
