"""Layout families: how an invoice's facts are arranged on the page.

A family is a named :class:`Style` (where the header, parties, meta data,
table, totals and bank details go and how they look) plus the :class:`Options`
it asks of the facts (credit note, discount, several tax rates, multi-page...).
One renderer draws every family from its style, so families differ in the
ways real vendors' templates differ, and the code stays in one place.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from .facts import Invoice, Line, Options
from .render import Canvas, Col

CURRENCY_NOTE = {"en": "All amounts in {c}", "de": "Alle Beträge in {c}", "fr": "Montants exprimés en {c}",
                 "nl": "Alle bedragen in {c}"}
POS = {"en": "Pos.", "de": "Pos.", "fr": "N°", "nl": "Nr."}
ART = {"en": "SKU", "de": "Art.-Nr.", "fr": "Réf.", "nl": "Art.nr."}
HOURS = {"en": "Hours", "de": "Std.", "fr": "Heures", "nl": "Uren"}
ORIGINAL = {"en": "Relates to invoice", "de": "Zu Rechnung", "fr": "Concerne la facture", "nl": "Betreft factuur"}
REMIT = {"en": "REMITTANCE ADVICE - please return with your payment", "de": "ZAHLUNGSABSCHNITT",
         "fr": "TALON DE PAIEMENT - à joindre à votre règlement", "nl": "BETAALSTROOK"}
PAYEE = {"en": "Payee", "de": "Empfänger", "fr": "Bénéficiaire", "nl": "Begunstigde"}
REF = {"en": "Reference", "de": "Verwendungszweck", "fr": "Référence", "nl": "Kenmerk"}
EXEMPT = {"en": "VAT not applicable - small business exemption.", "de": "Gemäß § 19 UStG wird keine Umsatzsteuer berechnet.",
          "fr": "TVA non applicable, art. 293 B du CGI.", "nl": "Vrijgesteld van btw (KOR)."}


@dataclass(frozen=True)
class Style:
    font: str = "helvetica"
    size: float = 9.5
    page: str = "A4"
    header: str = "left"          # left | right | centred | banner | letter | split | footer (the vendor only at the foot)
    title_place: str = "right"    # right | left | centred | inline | none-top (title above table)
    buyer: str = "left"           # left | right | none-label (at the left, as in an envelope's window)
    meta: str = "kv_right"        # kv_right | kv_left | grid | inline | sidebar
    columns: str = "dqua"         # d=description q=qty u=unit a=amount p=pos s=sku v=vat h=hours
    table: str = "bordered"       # bordered | borderless | header_fill | rules | zebra | mono
    totals: str = "right"         # right | left | in_table | boxed | top_box
    bank: str = "below"           # below | footer | slip | sidebar | none
    vat_place: str = "header"     # header | footer
    row_h: float = 6.0
    multipage_rows: int = 0       # >0: rows per page, with carried-over totals


@dataclass(frozen=True)
class Family:
    name: str
    style: Style
    options: Options = field(default_factory=Options)
    note: str = ""


# ---------------------------------------------------------------------------------------------
# pieces


def _title(inv: Invoice) -> str:
    return inv.w["credit_note"] if inv.credit_note else inv.w["invoice"]


def _number_label(inv: Invoice) -> str:
    return inv.w["credit_number"] if inv.credit_note else inv.w["invoice_number"]


def _meta_pairs(inv: Invoice) -> list[tuple[str, str]]:
    pairs = []
    if inv.number:
        pairs.append((_number_label(inv), inv.number))
    pairs.append((inv.w["invoice_date"], inv.issue_s))
    if inv.due_s:
        pairs.append((inv.w["due_date"], inv.due_s))
    if inv.po:
        pairs.append((inv.w["po"], inv.po))
    if inv.buyer is not None and len(inv.customer_no) and int(inv.customer_no) % 3 == 0:
        pairs.append((inv.w["customer_no"], inv.customer_no))
    if inv.credit_note and inv.extra.get("original"):
        pairs.append((ORIGINAL[inv.lang], inv.extra["original"]))
    return pairs


def _vendor_lines(inv: Invoice, contact: bool = True, vat: bool = True) -> list[str]:
    rows = list(inv.vendor.address_lines)
    if contact:
        rows.append(f"{inv.w['tel']} {inv.vendor.phone}")
        rows.append(inv.vendor.email)
    if vat and inv.vat_s:
        rows.append(f"{inv.w['vat_id']} {inv.vat_s}")
    return rows


def _buyer_rows(inv: Invoice) -> list[str]:
    if inv.buyer is None:
        return []
    return [inv.buyer.name] + inv.buyer.address_lines


def _bank_rows(inv: Invoice) -> list[str]:
    if not inv.iban_s:
        return []
    rows = [f"IBAN: {inv.iban_s}" if inv.lang != "de" or inv.iban_s[4] != " " else f"IBAN {inv.iban_s}"]
    if inv.bic:
        rows.append(f"BIC: {inv.bic}")
    return rows


def _totals_rows(inv: Invoice) -> list[tuple[str, str, bool]]:
    """(label, printed value, bold) for the totals block."""
    w, rows = inv.w, []
    if inv.subtotal_s is not None:
        rows.append((w["subtotal"], inv.money(inv.subtotal_s), False))
    if inv.tax_lines:
        if len(inv.tax_lines) == 1:
            t = inv.tax_lines[0]
            rows.append((f"{w['tax']} {t.rate_s}", inv.money(t.tax_s), False))
        else:
            for t in inv.tax_lines:
                rows.append((f"{w['tax']} {t.rate_s} ({t.base_s})", inv.money(t.tax_s), False))
            rows.append((w["tax_total"], inv.money(inv.tax_s), False))
    rows.append((w["total"], inv.money(inv.total_s), True))
    if inv.paid_s is not None:
        rows.append((w["paid"], inv.money(inv.paid_s), False))
    if inv.amount_due_s is not None:
        rows.append((w["amount_due"], inv.money(inv.amount_due_s), True))
    return rows


def _columns(inv: Invoice, st: Style, width: float) -> list[tuple[str, Col]]:
    w = inv.w
    spec = st.columns if inv.lines[0].qty is not None or "q" not in st.columns else "da"
    if inv.lines[0].qty is None:
        spec = "".join(c for c in spec if c not in "quh")
    fixed = {"q": 16, "h": 16, "u": 26, "a": 28, "p": 11, "s": 22, "v": 16}
    headers = {"q": w["qty"], "h": HOURS[inv.lang], "u": w["unit_price"], "a": w["amount"], "p": POS[inv.lang],
               "s": ART[inv.lang], "v": w["vat_col"], "d": w["description"]}
    if inv.currency and inv.currency_style == "code_header":
        headers["a"] = f"{headers['a']} ({inv.currency})"
        fixed["a"] = 36
    desc_w = width - sum(fixed[c] for c in spec if c != "d")
    out = []
    for c in spec:
        cw = desc_w if c == "d" else fixed[c]
        out.append((c, Col(headers[c], cw, "L" if c in "ds" else ("C" if c in "pv" else "R"))))
    return out


def _row(inv: Invoice, line: Line, i: int, cols: list[tuple[str, Col]], money_cells: bool) -> list[str]:
    cells = []
    for c, _ in cols:
        if c == "d":
            cells.append(line.description)
        elif c in "qh":
            cells.append(line.qty_s or "")
        elif c == "u":
            cells.append((inv.money(line.unit_s) if money_cells else line.unit_s) if line.unit_s else "")
        elif c == "a":
            cells.append(inv.money(line.amount_s) if money_cells else line.amount_s)
        elif c == "p":
            cells.append(str(i + 1))
        elif c == "s":
            cells.append(inv.extra["skus"][i] if line.qty is not None else "")
        elif c == "v":
            cells.append(line.rate_s)
    return cells


# ---------------------------------------------------------------------------------------------
# the renderer


def render(inv: Invoice, fam: Family, rng: random.Random) -> bytes:
    st = fam.style
    if st.bank == "none":  # this template prints no bank details, so there is no IBAN to extract
        inv.iban = inv.iban_s = inv.bic = None
    cv = Canvas(st.font, st.size, st.page)
    inv.extra.setdefault("skus", [f"{rng.choice('ABKMTX')}{rng.randint(1000, 99999)}" for _ in inv.lines])
    if inv.credit_note and rng.random() < 0.7:
        inv.extra["original"] = f"INV-{inv.issue.year}-{rng.randint(1, 9999):04d}"
    L, R = cv.left, cv.right
    big = st.size + rng.choice([4, 5, 7])
    y = 15.0
    title = _title(inv)
    vendor_rows = _vendor_lines(inv, contact=rng.random() < 0.6, vat=st.vat_place == "header")
    meta = _meta_pairs(inv)
    buyer_rows = _buyer_rows(inv)
    bill_to = inv.w["bill_to"]

    # header ---------------------------------------------------------------------------------
    if st.header == "left":
        cv.text(L, y, inv.vendor.name, style="B", size=big, h=8)
        yv = cv.lines(L, y + 9, vendor_rows)
        if st.title_place == "right":
            cv.text(R - 80, y, title, w=80, align="R", style="B", size=big + 2, h=8)
        y = yv + 6
    elif st.header == "right":
        cv.text(R - 90, y, inv.vendor.name, w=90, align="R", style="B", size=big, h=8)
        yv = cv.lines(R - 90, y + 9, vendor_rows, w=90, align="R")
        if st.title_place in ("left", "right"):
            cv.text(L, y, title, style="B", size=big + 2, h=8)
        y = yv + 6
    elif st.header == "centred":
        cw = R - L
        cv.text(L, y, inv.vendor.name, w=cw, align="C", style="B", size=big, h=8)
        cv.text(L, y + 9, ", ".join(inv.vendor.address_lines), w=cw, align="C", size=st.size - 1)
        extra = [r for r in vendor_rows if r not in inv.vendor.address_lines]
        if extra:
            cv.text(L, y + 14, "  |  ".join(extra), w=cw, align="C", size=st.size - 1.5)
        cv.hline(y + 21)
        y += 25
        if st.title_place in ("centred", "right", "left"):
            cv.text(L, y, title, w=cw, align="C", style="B", size=big, h=8)
            y += 11
    elif st.header == "banner":
        cv.rect(0, 0, cv.width, 26, fill_gray=215)
        cv.text(L, 8, inv.vendor.name, style="B", size=big + 2, h=9)
        cv.text(R - 70, 8, title, w=70, align="R", style="B", size=big + 2, h=9)
        y = 30
        cv.text(L, y, ", ".join(inv.vendor.address_lines), size=st.size - 1)
        extra = [r for r in vendor_rows if r not in inv.vendor.address_lines]
        if extra:
            cv.text(L, y + 5, "  ".join(extra), size=st.size - 1)
        y += 14
    elif st.header == "letter":  # DIN 5008-like: sender line above the address window
        cv.text(R - 70, y, inv.vendor.name, w=70, align="R", style="B", size=big, h=8)
        cv.lines(R - 70, y + 9, vendor_rows, w=70, align="R", size=st.size - 1, lh=4.2)
        y = 50
        cv.text(L, y, f"{inv.vendor.name} - {', '.join(inv.vendor.address_lines)}", size=6.5, h=4)
        cv.hline(y + 4.2, L, L + 85, 0.1)
        yb = cv.lines(L, y + 6, buyer_rows) if buyer_rows else y + 6
        y = max(yb, y + 26) + 4
        cv.text(L, y, title + (f" {inv.number}" if inv.number and st.title_place == "inline" else ""), style="B", size=big, h=8)
        y += 11
    elif st.header == "footer":  # the buyer's address on top, the vendor only in the page's footer
        cv.text(L, y, title, style="B", size=big + 2, h=9)
        y += 12
    elif st.header == "split":  # vendor and buyer side by side in boxes
        cv.text(L, y, title, style="B", size=big + 2, h=9)
        y += 12
        box_h = 6 + 4.6 * max(len(vendor_rows) + 1, len(buyer_rows) + 1)
        half = (R - L - 6) / 2
        cv.rect(L, y, half, box_h)
        cv.rect(L + half + 6, y, half, box_h)
        cv.text(L + 2, y + 1, inv.vendor.name, style="B")
        cv.lines(L + 2, y + 6, vendor_rows)
        if buyer_rows:
            cv.text(L + half + 8, y + 1, bill_to, style="B", size=st.size - 1.5, h=4)
            cv.lines(L + half + 8, y + 5.5, buyer_rows)
        y += box_h + 5
        buyer_rows = []

    # buyer and meta -------------------------------------------------------------------------
    if st.header != "letter" and buyer_rows and st.meta != "sidebar":
        bx = R - 80 if st.buyer == "right" else L
        if st.buyer != "none-label":
            cv.text(bx, y, bill_to, style="B", size=st.size - 1)
            y_b = cv.lines(bx, y + 5, buyer_rows)
        else:
            y_b = cv.lines(bx, y, buyer_rows)
    else:
        y_b = y
    label_w = max(cv.measure(k + ":") for k, _ in meta) + 3
    if st.meta == "kv_right":
        mx = R - 40 - label_w if st.buyer != "right" or st.header == "letter" else L
        y_m = cv.kv(mx, y, meta, label_w, 40)
    elif st.meta == "kv_left":
        y_m = cv.kv(L if st.buyer == "right" else L, max(y_b, y) + 3 if st.buyer == "left" else y, meta, label_w, 45)
    elif st.meta == "grid":
        y0 = max(y_b, y) + 3
        cw = (R - L) / len(meta)
        for i, (k, v) in enumerate(meta):
            cv.text(L + i * cw, y0, k, w=cw, h=5, border="LTR", style="B", size=st.size - 1.5)
            cv.text(L + i * cw, y0 + 5, v, w=cw, h=6, border="LBR")
        y_m = y0 + 12
    elif st.meta == "inline":
        y0 = max(y_b, y) + 3
        parts = [f"{k}: {v}" for k, v in meta]
        half = (len(parts) + 1) // 2
        cv.text(L, y0, "   ".join(parts[:half]))
        cv.text(L, y0 + 5, "   ".join(parts[half:]))
        y_m = y0 + 10
    elif st.meta == "sidebar":
        y_m = y
        side = meta + ([(bill_to, "")] if buyer_rows else [])
        sy = y
        for k, v in meta:
            cv.text(L, sy, k, style="B", size=st.size - 1.5, h=4)
            cv.text(L, sy + 4, v, h=5)
            sy += 10
        if buyer_rows:
            cv.text(L, sy, bill_to, style="B", size=st.size - 1.5, h=4)
            sy = cv.lines(L, sy + 4, buyer_rows, size=st.size - 1, lh=4.2)
        if st.bank == "sidebar" and inv.iban_s:
            cv.text(L, sy + 3, inv.w["bank"], style="B", size=st.size - 1.5, h=4)
            cv.lines(L, sy + 7, [inv.iban_s] + ([inv.bic] if inv.bic else []), size=st.size - 1.5, lh=4.2)
        del side
    else:
        y_m = y
    y = max(y_b, y_m) + 6
    if st.title_place == "none-top":
        cv.text(L, y, title, style="B", size=big, h=8)
        y += 10

    # table ----------------------------------------------------------------------------------
    tx = L + 52 if st.meta == "sidebar" else L
    tw = R - tx
    cols = _columns(inv, st, tw)
    for line in inv.lines:
        line.description = cv.fit(line.description, cols[[c for c, _ in cols].index("d")][1].width)
    money_cells = inv.currency_style in ("symbol_before", "symbol_after") and rng.random() < 0.3
    rows = [_row(inv, line, i, cols, money_cells) for i, line in enumerate(inv.lines)]
    table_style = st.table if st.table != "mono" else "borderless"
    if st.multipage_rows and len(rows) > st.multipage_rows:
        y = _multipage_table(cv, inv, st, cols, rows, tx, y, table_style)
    else:
        y = cv.table(tx, y, [c for _, c in cols], rows, table_style, st.row_h)
    if inv.currency and inv.currency_style == "code_header" and not any(c.header.endswith(f"({inv.currency})") for _, c in cols):
        cv.text(tx, y + 1, CURRENCY_NOTE[inv.lang].format(c=inv.currency), size=st.size - 1.5, h=4)
        y += 5

    # totals ---------------------------------------------------------------------------------
    trows = _totals_rows(inv)
    y += 4
    if st.totals in ("right", "boxed", "left"):
        lw = max(cv.measure(r[0]) for r in trows) + 6
        vw = max(cv.measure(r[1]) for r in trows) + 8
        x0 = R - lw - vw if st.totals != "left" else tx
        if st.totals == "boxed":
            cv.rect(x0 - 2, y - 1, lw + vw + 2, len(trows) * 5.5 + 2)
        for label, value, bold in trows:
            cv.text(x0, y, label, w=lw, style="B" if bold else "", h=5.5)
            cv.text(x0 + lw, y, value, w=vw, align="R", style="B" if bold else "", h=5.5)
            y += 5.5
    elif st.totals == "in_table":
        widths = [c.width for _, c in cols]
        lab_w = sum(widths[:-1])
        y -= 4
        for label, value, bold in trows:
            cv.text(tx, y, label, w=lab_w, align="R", style="B" if bold else "", border=1 if st.table == "bordered" else 0, h=st.row_h)
            cv.text(tx + lab_w, y, value, w=widths[-1], align="R", style="B" if bold else "", border=1 if st.table == "bordered" else 0, h=st.row_h)
            y += st.row_h
    elif st.totals == "top_box":  # net and tax listed below, the amount to pay boxed near the top
        for label, value, bold in trows[:-1]:
            cv.text(R - 90, y, label, w=55)
            cv.text(R - 35, y, value, w=35, align="R")
            y += 5
        label, value, _ = trows[-1]
        cv.rect(R - 70, 38, 70, 16)
        cv.text(R - 68, 39, label, w=66, style="B", size=st.size - 1)
        cv.text(R - 68, 45, value, w=66, align="R", style="B", size=st.size + 3, h=8)
    y += 5

    # notes, bank, footer --------------------------------------------------------------------
    notes = []
    if not inv.tax_lines:
        notes.append(EXEMPT[inv.lang])
    if inv.credit_note:
        notes.append(inv.w["credit_text"])
    elif inv.due_s is None or rng.random() < 0.3:
        notes.append(inv.w["terms"].format(n=inv.terms_days))
    if inv.number and inv.iban_s and rng.random() < 0.4:
        notes.append(inv.w["reference"])
    y = cv.lines(L, y, notes, size=st.size - 1) + 3
    if st.bank == "below" and inv.iban_s:
        cv.text(L, y, inv.w["bank"], style="B")
        y = cv.lines(L, y + 5, _bank_rows(inv)) + 3
    if rng.random() < 0.5:
        cv.text(L, y, inv.w["thanks"], size=st.size - 1)
    if st.bank == "slip":
        _slip(cv, inv)
    if st.bank == "footer" or st.vat_place == "footer":
        _footer(cv, inv, st)
    return cv.output()


def _slip(cv: Canvas, inv: Invoice) -> None:
    """A tear-off remittance slip at the foot of the page."""
    y = cv.height - 58
    cv.pdf.set_dash_pattern(dash=2, gap=1.5)
    cv.hline(y)
    cv.pdf.set_dash_pattern()
    cv.text(cv.left, y + 3, REMIT[inv.lang], style="B", size=cv.size - 1)
    amount = inv.amount_due_s if inv.amount_due_s is not None else inv.total_s
    pairs = [(PAYEE[inv.lang], inv.vendor.name)]
    if inv.iban_s:
        pairs.append(("IBAN", inv.iban_s))
    if inv.bic:
        pairs.append(("BIC", inv.bic))
    if inv.number:
        pairs.append((REF[inv.lang], inv.number))
    pairs.append((inv.w["amount_due"], inv.money(amount)))
    lw = max(cv.measure(k + ":") for k, _ in pairs) + 3
    cv.kv(cv.left, y + 10, pairs, lw, 90)


def _footer(cv: Canvas, inv: Invoice, st: Style) -> None:
    """Three small columns at the page foot: address, contacts and tax id, bank."""
    y = cv.height - 24
    cv.hline(y - 2, width=0.1)
    colw = (cv.right - cv.left) / 3
    small = st.size - 2
    cv.lines(cv.left, y, [inv.vendor.name] + inv.vendor.address_lines[:3], w=colw, size=small, lh=3.8)
    mid = [inv.vendor.email] + ([f"{inv.w['vat_id']} {inv.vat_s}"] if inv.vat_s and st.vat_place == "footer" else [])
    cv.lines(cv.left + colw, y, mid, w=colw, size=small, lh=3.8)
    if st.bank == "footer":
        cv.lines(cv.left + 2 * colw, y, _bank_rows(inv), w=colw, size=small, lh=3.8)


def _multipage_table(cv: Canvas, inv: Invoice, st: Style, cols, rows, x, y, table_style) -> float:
    """Split the lines over pages, printing carried-forward and brought-forward subtotals."""
    per = st.multipage_rows
    chunks = [rows[i:i + per] for i in range(0, len(rows), per)]
    npages = len(chunks)
    running = 0
    lang = inv.lang
    widths = [c.width for _, c in cols]
    for p, chunk in enumerate(chunks):
        if p:
            cv.new_page()
            cv.text(cv.left, 15, inv.vendor.name, style="B")
            head = f"{_number_label(inv)} {inv.number}" if inv.number else inv.issue_s
            cv.text(cv.right - 90, 15, head, w=90, align="R")
            y = 25
            cv.text(x, y, inv.w["brought"], w=sum(widths[:-1]), align="R")
            cv.text(x + sum(widths[:-1]), y, inv.money(_fmt_running(inv, running)), w=widths[-1], align="R")
            y += 7
        y = cv.table(x, y, [c for _, c in cols], chunk, table_style, st.row_h, header=True)
        running_lines = inv.lines[: p * per + len(chunk)]
        running = sum(l.amount for l in running_lines)
        if p < npages - 1:
            cv.text(x, y + 1, inv.w["carried"], w=sum(widths[:-1]), align="R", style="B")
            cv.text(x + sum(widths[:-1]), y + 1, inv.money(_fmt_running(inv, running)), w=widths[-1], align="R", style="B")
        cv.text(cv.right - 40, cv.height - 12, f"{inv.w['page']} {p + 1} {inv.w['of']} {npages}", w=40, align="R", size=cv.size - 2)
    del lang
    return y


def _fmt_running(inv: Invoice, value) -> str:
    from .locales import fmt_number
    return fmt_number(value, inv.loc)


# ---------------------------------------------------------------------------------------------
# the families

_S = Style()
FAMILIES: list[Family] = [
    Family("classic_left", replace(_S, header="left", meta="kv_right", table="bordered", totals="right", bank="below")),
    Family("modern_right", replace(_S, header="right", title_place="left", meta="grid", table="header_fill", totals="right", bank="footer", vat_place="footer")),
    Family("centred_letterhead", replace(_S, header="centred", meta="kv_left", buyer="right", table="rules", totals="right", bank="below", font="times", size=10.5)),
    Family("din_letter", replace(_S, header="letter", title_place="inline", meta="kv_right", table="borderless", totals="right", bank="footer", columns="pdqua", vat_place="footer")),
    Family("banner_zebra", replace(_S, header="banner", meta="grid", table="zebra", totals="boxed", bank="below")),
    Family("mono_plain", replace(_S, font="courier", size=9, header="left", title_place="right", meta="kv_left", table="mono", totals="right", bank="below", columns="qdua")),
    Family("hourly_services", replace(_S, header="left", meta="kv_right", columns="dhua", table="rules", totals="right", bank="below"), Options(min_items=2, max_items=5)),
    Family("services_amount_only", replace(_S, header="right", title_place="left", meta="inline", columns="da", table="borderless", totals="right", bank="below"), Options(qty_columns=False, max_items=5)),
    Family("sku_positions", replace(_S, header="left", meta="kv_right", columns="psdqua", table="bordered", totals="in_table", bank="footer", size=8.5)),
    Family("multi_vat_column", replace(_S, header="left", meta="grid", columns="dquva", table="header_fill", totals="right", bank="below"), Options(multi_tax=True)),
    Family("discount_line", replace(_S, header="centred", title_place="centred", meta="kv_left", table="bordered", totals="right", bank="below"), Options(discount=True)),
    Family("credit_note", replace(_S, header="left", meta="kv_right", table="rules", totals="right", bank="none"), Options(credit_note=True, max_items=4)),
    Family("multipage_carry", replace(_S, header="left", meta="kv_right", columns="pdqua", table="bordered", totals="right", bank="footer", multipage_rows=9, size=9), Options(min_items=11, max_items=16)),
    Family("remittance_slip", replace(_S, header="right", title_place="left", meta="kv_left", table="borderless", totals="right", bank="slip", buyer="right"), Options(iban=0.95, max_items=5)),
    Family("totals_left", replace(_S, header="split", meta="inline", table="bordered", totals="left", bank="below")),
    Family("totals_in_table", replace(_S, header="banner", meta="kv_right", buyer="left", columns="qdua", table="bordered", totals="in_table", bank="below")),
    Family("amount_box_top", replace(_S, header="left", title_place="none-top", meta="kv_left", table="rules", totals="top_box", bank="below", font="times", size=10)),
    Family("us_letter", replace(_S, page="Letter", header="left", meta="kv_right", columns="qdua", table="header_fill", totals="right", bank="none"), Options(us=True, iban=0.0, currency_styles=("symbol_before",))),
    Family("deposit_balance", replace(_S, header="right", title_place="left", meta="grid", table="rules", totals="boxed", bank="below"), Options(deposit=True)),
    Family("split_parties", replace(_S, header="split", meta="grid", table="header_fill", totals="right", bank="footer", vat_place="footer")),
    Family("freelancer_exempt", replace(_S, header="centred", title_place="none-top", meta="kv_right", buyer="left", columns="dqua", table="borderless", totals="right", bank="below", font="times", size=10.5), Options(no_tax=True, max_items=4, iban=0.95)),
    Family("vendor_in_footer", replace(_S, header="footer", title_place="left", meta="kv_right", buyer="none-label", columns="dqua", table="rules", totals="right", bank="footer", vat_place="footer")),
    Family("sidebar_meta", replace(_S, header="left", title_place="right", meta="sidebar", table="rules", columns="dqa" if False else "dqua", totals="right", bank="sidebar", size=8.5)),
]

HELD_OUT_FAMILY = "sidebar_meta"
FAMILY_BY_NAME = {f.name: f for f in FAMILIES}
INVOICE_FAMILIES = [f.name for f in FAMILIES]
