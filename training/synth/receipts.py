"""Shop receipts as text, one printed line (or OCR fragment) per line, like SROIE.

Receipts use the invoice schema. Most are Malaysian-style (ringgit, GST/SST,
SDN BHD) because that is what the SROIE evaluation set holds; the rest are
European till receipts in the four invoice languages. Content is generated,
never copied from SROIE.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from decimal import Decimal

from .example import Example
from .locales import LOCALES, MONTHS, fmt_date, fmt_number, q2
from .parties import make_party, make_vat_id

MY_WORDS = ["MERANTI", "BUNGA RAYA", "PUTRA", "SETIA", "INDAH", "BAKTI", "MAJU", "CEMPAKA", "MUTIARA", "SENTOSA",
            "KENANGA", "HARMONI", "DAMAI", "JAYA", "CAHAYA", "SEJAHTERA"]
MY_TYPES = ["TRADING", "ENTERPRISE", "HARDWARE", "BOOKSTORE", "RESTAURANT", "MART", "STATIONERY", "BAKERY",
            "PHARMACY", "KOPITIAM"]
MY_TOWNS = [("JOHOR BAHRU", "JOHOR", "81"), ("KLANG", "SELANGOR", "41"), ("PETALING JAYA", "SELANGOR", "47"),
            ("SHAH ALAM", "SELANGOR", "40"), ("KUALA LUMPUR", "W.P. KUALA LUMPUR", "50"), ("IPOH", "PERAK", "30"),
            ("SEREMBAN", "NEGERI SEMBILAN", "70"), ("MELAKA", "MELAKA", "75"), ("BUTTERWORTH", "PULAU PINANG", "12")]
MY_ITEMS = [("MINERAL WATER 1.5L", 1.2, 3.5), ("A4 PAPER 80GSM", 9, 16), ("BALL PEN BLUE", 0.8, 3), ("NASI LEMAK", 3, 9),
            ("TEH TARIK", 1.5, 3.5), ("ROTI CANAI", 1.2, 2.5), ("GLUE STICK 21G", 2, 5), ("LED BULB 9W", 6, 18),
            ("SCREW 1 INCH (PKT)", 2, 6), ("PAINT BRUSH 2\"", 3, 9), ("MILO ICE", 2.5, 5), ("CHICKEN RICE", 6, 12),
            ("EXERCISE BOOK 80P", 1, 3), ("EXTENSION CORD 3M", 15, 40), ("KOPI O", 1.3, 2.8), ("CUP CAKE", 2, 6)]
EU_ITEMS = {
    "en": [("Sandwich", 2.5, 6), ("Coffee latte", 2.2, 4.5), ("Milk 1L", 0.9, 1.6), ("Bread", 1.2, 3.5),
           ("Batteries AA x4", 3, 7), ("Newspaper", 1.5, 3), ("Apples 1kg", 1.8, 3.5), ("Water 500ml", 0.7, 1.8)],
    "de": [("Brötchen", 0.35, 0.8), ("Milch 1L", 0.9, 1.6), ("Kaffee", 2.2, 4.5), ("Brot", 1.8, 4),
           ("Batterien AA", 3, 7), ("Zeitung", 1.5, 3), ("Äpfel 1kg", 1.8, 3.5), ("Butter", 1.6, 3)],
    "fr": [("Baguette", 0.9, 1.4), ("Café crème", 1.8, 4), ("Lait 1L", 0.9, 1.6), ("Croissant", 0.9, 1.6),
           ("Piles AA x4", 3, 7), ("Journal", 1.5, 3), ("Pommes 1kg", 1.8, 3.5), ("Fromage", 2.5, 7)],
    "nl": [("Broodje kaas", 2.5, 5), ("Koffie", 2.2, 4), ("Melk 1L", 0.9, 1.6), ("Brood", 1.8, 3.5),
           ("Batterijen AA", 3, 7), ("Krant", 1.5, 3), ("Appels 1kg", 1.8, 3.5), ("Stroopwafels", 1.5, 3)],
}
EU_WORDS = {
    "en": ("RECEIPT", "Receipt no", "Date", "SUBTOTAL", "VAT", "TOTAL", "CASH", "CHANGE", "Thank you for shopping with us"),
    "de": ("KASSENBON", "Bon-Nr.", "Datum", "ZWISCHENSUMME", "MwSt", "SUMME", "BAR", "RÜCKGELD", "Vielen Dank für Ihren Einkauf"),
    "fr": ("TICKET DE CAISSE", "Ticket n°", "Date", "SOUS-TOTAL", "TVA", "TOTAL", "ESPECES", "RENDU", "Merci de votre visite"),
    "nl": ("KASSABON", "Bonnr.", "Datum", "SUBTOTAAL", "BTW", "TOTAAL", "CONTANT", "WISSELGELD", "Bedankt voor uw bezoek"),
}


def _my_vendor(rng: random.Random) -> tuple[str, list[str], str]:
    name = f"{rng.choice(MY_WORDS)} {rng.choice(MY_TYPES)} {rng.choice(['SDN BHD', 'SDN. BHD.', 'ENTERPRISE', 'SDN BHD'])}"
    town, state, pc = rng.choice(MY_TOWNS)
    addr = [f"NO. {rng.randint(1, 120)}, JALAN {rng.choice(MY_WORDS)} {rng.randint(1, 30)},",
            f"TAMAN {rng.choice(MY_WORDS)},", f"{pc}{rng.randint(100, 999)} {town},", f"{state}."]
    if rng.random() < 0.4:
        addr = addr[:1] + addr[2:]
    addr = [a.rstrip(",.") for a in addr] if rng.random() < 0.5 else addr
    return name, addr, f"{rng.randint(100000, 999999)}-{rng.choice('AUVWXPT')}"


def _my_date(day: dt.date, rng: random.Random) -> str:
    return rng.choice([f"{day.day:02d}/{day.month:02d}/{day.year}", f"{day.day:02d}-{day.month:02d}-{day.year % 100:02d}",
                       f"{day.day:02d} {MONTHS['en'][day.month - 1][:3].upper()} {day.year}", f"{day.year}-{day.month:02d}-{day.day:02d}",
                       f"{day.day:02d}/{day.month:02d}/{day.year % 100:02d}", f"{day.day:02d}.{day.month:02d}.{day.year}",
                       f"{day.day}/{day.month}/{day.year}", f"{day.day:02d} {MONTHS['en'][day.month - 1][:3].upper()} {day.year % 100:02d}"])


# What till printers put above the company name: a queue number, a reference,
# a brand or outlet line. SROIE's vendor is the company, never these.
MY_PREAMBLES = [
    lambda rng: [" ".join(str(rng.randint(0, 9)) for _ in range(8))],
    lambda rng: ["YOUR ORDER NUMBER IS", str(rng.randint(1, 999))],
    lambda rng: [f"REF NO: {rng.randint(0, 9)}", str(rng.randint(10**13, 10**14 - 1)).zfill(14)],
    lambda rng: [rng.choice(MY_WORDS) + rng.choice(["", "'S", " CAFE", " MART"])],
    lambda rng: [rng.choice(MY_WORDS), rng.choice(MY_WORDS)],
    lambda rng: [f"CT{rng.randint(100, 999)} - {rng.choice(MY_WORDS)} {rng.choice(MY_TOWNS)[0]}"],
]


def _vendor_lines(name: str, rng: random.Random) -> list[str]:
    """The company name as printed: usually one line, sometimes wrapped before
    the company suffix or after its first word (the label joins them with a space)."""
    words = name.split()
    if rng.random() < 0.2 and len(words) >= 3:
        cut = rng.choice([1, len(words) - 2 if words[-1] in ("BHD", "BHD.") else len(words) - 1])
        return [" ".join(words[:cut]), " ".join(words[cut:])]
    return [name]


def _split(line: str, rng: random.Random, p: float) -> list[str]:
    """OCR line output often breaks "LABEL: VALUE" into two lines."""
    if ":" in line and rng.random() < p:
        k, v = line.split(":", 1)
        return [k.strip() + ":", v.strip()] if v.strip() else [line]
    return [line]


def build_receipt(rng: random.Random) -> tuple[str, dict, dict]:
    malaysian = rng.random() < 0.6
    day = dt.date(2017, 1, 1) + dt.timedelta(days=rng.randint(0, 2900))
    split_p = rng.choice([0.0, 0.3, 0.8])
    lines: list[str] = []
    if malaysian:
        name, addr, reg = _my_vendor(rng)
        tax_s = f"{rng.randint(0, 1):03d}{rng.randint(100000000, 999999999)}" if rng.random() < 0.6 else None
        loc = LOCALES["en_GB"]
        date_s = _my_date(day, rng)
        currency, cur_sym = "MYR", "RM"
        items_pool = MY_ITEMS
        rate = Decimal(rng.choice(["6", "6", "0", "10", "8"])) if rng.random() < 0.7 else None
        w = ("TAX INVOICE" if rate else rng.choice(["CASH BILL", "RECEIPT", "CASH RECEIPT"]), rng.choice(["INVOICE NO", "RECEIPT #", "DOC NO", "BILL NO"]),
             "DATE", "SUB TOTAL", "GST" if rng.random() < 0.6 else "SST", rng.choice(["TOTAL", "TOTAL AMOUNT", "NETT TOTAL", "TOTAL (RM)"]), "CASH", "CHANGE",
             rng.choice(["THANK YOU. PLEASE COME AGAIN", "GOODS SOLD ARE NOT RETURNABLE", "THANK YOU!"]))
        if rng.random() < 0.3:
            lines += rng.choice(MY_PREAMBLES)(rng)
        lines += _vendor_lines(name, rng)
        lines.append(f"({reg})" if rng.random() < 0.5 else f"CO. REG: {reg}")
        lines += addr
        if tax_s:
            lines += _split(f"GST ID: {tax_s}" if w[4] == "GST" else f"SST REG NO: {tax_s}", rng, split_p)
        lines.append(f"TEL: 0{rng.randint(3, 9)}-{rng.randint(1000000, 9999999)}")
    else:
        code = rng.choice(["en_GB", "de_DE", "fr_FR", "nl_NL", "de_AT", "nl_BE", "en_IE"])
        loc = LOCALES[code]
        party = make_party(code, rng.getrandbits(32))
        name, addr = party.name, party.address_lines
        tax_s = make_vat_id(loc.country, rng)[0] if rng.random() < 0.6 else None
        date_s = fmt_date(day, rng.choice([s for s in loc.date_styles if "Month" not in s] or ["iso"]), loc.lang)
        currency, cur_sym = "EUR" if loc.country != "GB" else "GBP", "EUR" if loc.country != "GB" else "GBP"
        items_pool = EU_ITEMS[loc.lang]
        rate = Decimal(str({"GB": 20, "DE": 7, "FR": 5.5, "NL": 9, "AT": 10, "BE": 6, "IE": 13.5}[loc.country])) if rng.random() < 0.8 else None
        w = EU_WORDS[loc.lang]
        lines.append(name)
        lines += addr
        if tax_s:
            lines.append(tax_s)
    lines.append(w[0])
    number = f"{rng.randint(1, 99999):0{rng.choice([5, 6, 8])}d}" if rng.random() < 0.85 else None
    if number and malaysian and rng.random() < 0.5:
        number = f"{rng.choice(['CS', 'INV', 'T', 'OR'])}{number}"
    if number:
        lines += _split(f"{w[1]}: {number}", rng, split_p)
    time_s = f"{rng.randint(8, 21):02d}:{rng.randint(0, 59):02d}" + (f":{rng.randint(0, 59):02d}" if rng.random() < 0.5 else "")
    stamp = f"{date_s} {time_s}" if rng.random() < 0.7 else date_s
    if malaysian and rng.random() < 0.3 and time_s.count(":") == 1:
        stamp = f"{date_s} {int(time_s[:2]) % 12 or 12:02d}:{time_s[3:]}{'PM' if int(time_s[:2]) >= 12 else 'AM'}"
    # where the date sits: labelled under the header (most tills), bare under
    # the header, beside the cashier, or bare at the foot of the receipt
    placement = rng.choices(["labelled", "bare", "cashier", "foot", "label_far"], [5, 2, 1, 2, 1])[0] if malaysian else "labelled"
    cashier = rng.choice(["ANNA", "MOHD", "SITI", "LEE", "RAJ", "TOM", "KIM"])
    if placement == "labelled":
        lines += _split(f"{w[2]}: {stamp}", rng, split_p)
    elif placement == "bare":
        lines.append(stamp)
    elif placement == "cashier":
        lines.append(f"{rng.choice(['SERVED BY', 'CASHIER'])}: {cashier} {stamp}")
    elif placement == "label_far":
        lines.append(w[2])
    if malaysian and placement != "cashier" and rng.random() < 0.4:
        lines.append(f"CASHIER: {cashier}")

    items = []
    for desc, lo, hi in rng.sample(items_pool, rng.randint(1, 6)):
        qty = Decimal(rng.choice([1, 1, 1, 2, 3, 4]))
        unit = q2(Decimal(str(round(rng.uniform(lo, hi), 2))))
        amount = q2(qty * unit)
        items.append((desc, qty, unit, amount))
    fmt = lambda v: fmt_number(v, loc)  # noqa: E731
    item_style = rng.choice(["one_line", "two_line", "ocr"])
    target_items, label_items = [], []
    for desc, qty, unit, amount in items:
        show_qty = item_style != "one_line" or qty != 1 or rng.random() < 0.5
        if item_style == "one_line":
            lines.append(f"{desc} {str(int(qty)) + ' x ' + fmt(unit) + ' ' if show_qty else ''}{fmt(amount)}")
        elif item_style == "two_line":
            lines += [desc, f"{int(qty)} X {fmt(unit)}    {fmt(amount)}"]
        else:
            lines += [desc, str(int(qty)), fmt(unit), fmt(amount)]
        target_items.append({"description": desc, "quantity": str(int(qty)) if show_qty else None,
                             "unit_price": fmt(unit) if show_qty else None, "amount": fmt(amount)})
        label_items.append({"description": desc, "quantity": float(qty) if show_qty else None,
                            "unit_price": float(unit) if show_qty else None, "amount": float(amount)})
    subtotal = sum(a for *_, a in items)
    tax = q2(subtotal * rate / 100) if rate is not None else None
    total = subtotal + (tax or 0)
    show_sub = tax is not None or rng.random() < 0.3
    if show_sub:
        lines += _split(f"{w[3]}: {fmt(subtotal)}", rng, split_p)
    if tax is not None:
        lines += _split(f"{w[4]} {fmt_number(rate, loc, 0 if rate == int(rate) else 1)}%: {fmt(tax)}", rng, split_p)
    total_line = f"{w[5]}: {cur_sym} {fmt(total)}" if rng.random() < 0.5 else f"{w[5]}: {fmt(total)}"
    lines += _split(total_line, rng, split_p)
    cash = q2(Decimal(int(total) + rng.choice([1, 5, 10, 20])))
    lines += _split(f"{w[6]}: {fmt(cash)}", rng, split_p)
    lines += _split(f"{w[7]}: {fmt(cash - total)}", rng, split_p)
    if placement == "label_far":
        lines.append(f": {stamp}")
    lines.append(w[8])
    if placement == "foot":
        lines.append(stamp)
    text = "\n".join(lines)
    currency_shown = cur_sym in text
    target = {
        "vendor_name": name, "vendor_address": ", ".join(a.rstrip(",") for a in addr), "vendor_tax_id": tax_s,
        "buyer_name": None, "invoice_number": number, "invoice_date": date_s, "due_date": None, "purchase_order": None,
        "currency": currency if currency_shown else None,
        "subtotal": fmt(subtotal) if show_sub else None, "tax": fmt(tax) if tax is not None else None,
        "total": fmt(total), "amount_due": None, "iban": None, "line_items": target_items,
    }
    labels = dict(target)
    labels.update({
        "vendor_tax_id": tax_s.replace(" ", "") if tax_s else None, "invoice_date": day.isoformat(),
        "subtotal": float(subtotal) if show_sub else None, "tax": float(tax) if tax is not None else None,
        "total": float(total), "line_items": label_items,
    })
    return text, target, labels


def generate_receipts(n: int, seed: int) -> Iterator[Example]:
    for i in range(n):
        rng = random.Random(f"receipt:{seed}:{i}")
        text, target, labels = build_receipt(rng)
        yield Example(id=f"rcp-{seed}-{i:05d}", doc_type="invoice", text=text, target=target, labels=labels,
                      meta={"family": "receipt"})
