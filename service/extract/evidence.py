"""Finding a value in the document it was extracted from.

Evidence is what a reviewer checks and what makes a confident answer
trustworthy: a value the model wrote that cannot be found in the text is
either normalised by the model (dates, amounts) or invented.
"""

from __future__ import annotations

import re

_SEPARATORS = r"[\s,;]+"


def find_span(raw: str, text: str, start_hint: int = 0) -> tuple[int, int] | None:
    """Character span of *raw* in *text*: exact first, then loose on whitespace, commas and case.

    Several occurrences: the first at or after *start_hint* wins (values of
    line items follow each other), else the first anywhere.
    """
    raw = raw.strip()
    if not raw:
        return None
    for begin in (start_hint, 0):
        at = text.find(raw, begin)
        if at >= 0:
            return at, at + len(raw)
    words = [w for w in re.split(_SEPARATORS, raw) if w]
    if not words:
        return None
    pattern = re.compile(_SEPARATORS.join(re.escape(w) for w in words), re.IGNORECASE)
    for begin in (start_hint, 0):
        match = pattern.search(text, begin)
        if match:
            return match.start(), match.end()
    return None
