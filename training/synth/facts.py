"""The facts of one invoice, decided before anything is drawn.

Amounts are computed with Decimal and rounded like invoicing software does;
every printed string (``*_s``) is produced here once, so the PDF, the target
(raw printed text) and the labels (normalised values) cannot disagree.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import Decimal

from .catalog import CATALOG, VAT_RATES
from .locales import CURRENCY_SYMBOL, LANG_LOCALES, LOCALE_WEIGHT, LOCALES, Locale, fmt_date, fmt_number, fmt_quantity, q2
from .parties import Party, group4, make_iban, make_party, make_vat_id
from .words import pick_words


@dataclass
class Line:
    description: str
    qty: Decimal | None
    unit: Decimal | None
    amount: Decimal
    rate: Decimal
    qty_s: str | None = None
    unit_s: str | None = None
    amount_s: str = ""
    rate_s: str = ""


@dataclass
class TaxLine:
    rate: Decimal
    base: Decimal
    tax: Decimal
    rate_s: str
    base_s: str
    tax_s: str


@dataclass
class Options:
    """What a layout family asks of the facts."""

    min_items: int = 2
    max_items: int = 6
    credit_note: bool = False
    discount: bool = False
    multi_tax: bool = False
    qty_columns: bool = True     # False: lines carry only a description and an amount
    no_tax: bool = False         # small-business exemption: no subtotal/tax printed
    deposit: bool = False        # partial payment, balance due printed
    us: bool = False             # US vendor, USD, sales tax, no IBAN
    iban: float = 0.75           # probability of printing an IBAN
    currency_styles: tuple[str, ...] = ("symbol_before", "symbol_after", "code_after", "code_header", "code_before")


@dataclass
class Invoice:
    loc: Locale
    lang: str
    w: dict[str, str]
    vendor: Party
    buyer: Party | None
    vat_s: str | None
    vat: str | None
    number: str | None
    issue: dt.date
    issue_s: str
    due: dt.date | None
    due_s: str | None
    terms_days: int
    po: str | None
    currency: str | None
    currency_style: str
    lines: list[Line]
    tax_lines: list[TaxLine]
    subtotal: Decimal | None
    subtotal_s: str | None
    tax: Decimal | None
    tax_s: str | None
    total: Decimal
    total_s: str
    paid: Decimal | None
    paid_s: str | None
    amount_due: Decimal | None
    amount_due_s: str | None
    iban: str | None
    iban_s: str | None
    bic: str | None
    credit_note: bool
    customer_no: str
    extra: dict = field(default_factory=dict)

    def money(self, text: str) -> str:
        """An amount decorated with the currency the way this document does it."""
        if self.currency is None or self.currency_style in ("code_header", "none"):
            return text
        sym = CURRENCY_SYMBOL[self.currency] if self.currency_style.startswith("symbol") else self.currency
        if self.currency_style in ("symbol_before", "code_before"):
            return f"{sym}{text}" if sym in ("$", "£") else f"{sym} {text}"
        return f"{text} {sym}"

    def rate_text(self, rate: Decimal) -> str:
        return fmt_number(rate, self.loc, 0 if rate == rate.to_integral_value() else (1 if rate * 10 == int(rate * 10) else 3)) + (" %" if self.lang in ("de", "fr") else "%")


def _invoice_number(rng: random.Random, year: int, credit: bool) -> str:
    n = rng.randint(1, 99999)
    if credit:
        return rng.choice([f"CN-{year}-{n % 1000:03d}", f"GS{year % 100}{n:05d}", f"AV-{n:06d}", f"C{n:07d}"])
    return rng.choice([
        f"INV-{year}-{n % 10000:04d}", f"{year}-{n % 10000:04d}", f"RE-{n}", f"F{year}/{n % 1000:04d}",
        f"FA-{n:06d}", f"{rng.randint(10000000, 99999999)}", f"{year}.{n % 10000}", f"{rng.choice('ABK')}{n:06d}",
        f"INV{n:05d}", f"{year % 100}{rng.randint(1, 12):02d}-{n % 1000:03d}",
        # a marketplace's or billing system's long id: site code, year, sequence
        f"{''.join(rng.choices('ABCDEFGHKLMNPRSTWXYZ', k=3))}_{''.join(rng.choices('ABCDEFGHKLMNPRSTWXYZ', k=4))}{year}{rng.randint(10**12, 10**13 - 1)}",
    ])


def _po(rng: random.Random) -> str:
    return rng.choice([
        f"PO-{rng.randint(100000, 999999)}", f"45{rng.randint(10000000, 99999999)}", f"PO{rng.randint(1000, 99999)}",
        f"B-{rng.randint(2022, 2025)}-{rng.randint(1, 999):03d}", f"{rng.choice(['KS', 'MK', 'TR'])}/{rng.randint(100, 9999)}",
    ])


def build_invoice(rng: random.Random, opts: Options, languages: tuple[str, ...]) -> Invoice:
    """Decide every fact of one invoice; printed strings are made here too."""
    if opts.us:
        loc = LOCALES["en_US"]
    else:
        lang = rng.choice(languages)
        pool = LANG_LOCALES[lang]
        loc = rng.choices(pool, [LOCALE_WEIGHT[l.code] for l in pool])[0]
    lang = loc.lang
    w = pick_words(lang, rng)
    if loc.country == "US":  # American invoices charge sales tax and show an EIN, not VAT
        w.update(tax=rng.choice(["Sales tax", "Tax"]), tax_total="Total tax", vat_id=rng.choice(["EIN", "Tax ID", "Federal Tax ID"]),
                 subtotal=rng.choice(["Subtotal", "Sub-total"]), total=rng.choice(["Total", "TOTAL", "Total due", "Invoice total"]))
    seed = rng.getrandbits(32)
    vendor = make_party(loc.code, seed)
    buyer_loc = loc.code if rng.random() < 0.8 or loc.country == "US" else rng.choice(list(LOCALES))
    buyer = make_party(buyer_loc, seed + 1, company=rng.random() < 0.8) if rng.random() < 0.9 else None
    if buyer is not None and buyer_loc != loc.code and LOCALES[buyer_loc].lang != lang:
        buyer = make_party(loc.code, seed + 2, company=True)

    vat_s, vat = make_vat_id(loc.country, rng) if rng.random() < 0.85 else (None, None)
    currency = rng.choice(loc.currencies)
    styles = [s for s in opts.currency_styles if not (currency == "PLN" and s.startswith("symbol"))]
    currency_style = rng.choice(styles) if rng.random() < 0.95 else "none"
    if currency_style == "none":
        currency = None

    issue = dt.date(2022, 1, 1) + dt.timedelta(days=rng.randint(0, 1400))
    date_style = rng.choice(loc.date_styles)
    terms = rng.choice([7, 10, 14, 14, 30, 30, 30, 45, 60])
    credit = opts.credit_note
    due = issue + dt.timedelta(days=terms) if rng.random() < 0.65 and not credit else None
    number = _invoice_number(rng, issue.year, credit) if rng.random() < 0.97 else None
    po = _po(rng) if rng.random() < 0.45 else None

    qty_style = rng.choice(["int", "int", "2dp"])
    price_mult = Decimal(rng.choice(["1", "1", "1", "10", "4"])) if currency in ("SEK", "PLN") else Decimal(1)
    rates = VAT_RATES[loc.country]
    sign = Decimal(-1) if credit else Decimal(1)
    n_items = rng.randint(opts.min_items, opts.max_items)
    catalog = CATALOG[lang]
    chosen = rng.sample(catalog, min(n_items, len(catalog)))
    while len(chosen) < n_items:
        chosen.append(rng.choice(catalog))
    lines: list[Line] = []
    for desc, lo, hi, fractional in chosen:
        unit = q2(Decimal(str(round(rng.uniform(lo, hi), rng.choice([0, 2, 2])))) * price_mult)
        if fractional:
            qty = Decimal(rng.choice(["0.5", "1.5", "2.5", "3.25", "4", "7.5", "1", "2", "8"]))
        elif unit > 150 * price_mult:  # expensive things are bought in ones and twos
            qty = Decimal(rng.choice([1, 1, 1, 2, 3]))
        else:
            qty = Decimal(rng.choice([1, 1, 1, 2, 2, 3, 4, 5, 6, 10, 12, 20, 25, 50]))
        qty = qty * sign
        rate = Decimal(str(rates[1] if opts.multi_tax and rng.random() < 0.4 else rates[0]))
        lines.append(Line(desc, qty, unit, q2(qty * unit), rate))
    if opts.multi_tax and len({l.rate for l in lines}) < 2:
        lines[-1].rate = Decimal(str(rates[1]))
    if opts.discount:
        pct = rng.choice([3, 5, 10, 15])
        base = sum(l.amount for l in lines)
        disc = -q2(base * pct / 100)
        lines.append(Line(f"{w['discount']} {pct}%", None, None, disc, lines[0].rate))
    if not opts.qty_columns:
        for l in lines:
            l.qty = l.unit = None

    for l in lines:
        l.amount_s = fmt_number(l.amount, loc)
        if l.qty is not None:
            l.qty_s = fmt_quantity(l.qty, loc, qty_style)
            l.unit_s = fmt_number(l.unit, loc)
    if opts.no_tax:
        for l in lines:
            l.rate = Decimal(0)
    subtotal = sum((l.amount for l in lines), Decimal(0))
    by_rate: dict[Decimal, Decimal] = {}
    for l in lines:
        by_rate[l.rate] = by_rate.get(l.rate, Decimal(0)) + l.amount
    tax_lines = []
    inv = Invoice(loc, lang, w, vendor, buyer, vat_s, vat, number, issue, fmt_date(issue, date_style, lang),
                  due, fmt_date(due, date_style, lang) if due else None, terms, po, currency, currency_style,
                  lines, tax_lines, None, None, None, None, Decimal(0), "", None, None, None, None,
                  None, None, None, credit, f"{rng.randint(10000, 99999)}")
    for l in lines:
        l.rate_s = inv.rate_text(l.rate)
    for rate, base in sorted(by_rate.items(), reverse=True):
        tax = q2(base * rate / 100)
        tax_lines.append(TaxLine(rate, base, tax, inv.rate_text(rate), fmt_number(base, loc), fmt_number(tax, loc)))
    tax = sum((t.tax for t in tax_lines), Decimal(0))
    if opts.no_tax:
        inv.tax_lines = []
        inv.total = subtotal
    else:
        inv.subtotal, inv.subtotal_s = subtotal, fmt_number(subtotal, loc)
        inv.tax, inv.tax_s = tax, fmt_number(tax, loc)
        inv.total = subtotal + tax
    inv.total_s = fmt_number(inv.total, loc)
    if opts.deposit and not credit:
        paid = q2(inv.total * Decimal(rng.choice([20, 25, 30, 50])) / 100)
        inv.paid, inv.paid_s = paid, fmt_number(-paid if rng.random() < 0.5 else paid, loc)
        inv.amount_due = inv.total - paid
    elif not credit and rng.random() < 0.45:
        inv.amount_due = inv.total
    if inv.amount_due is not None:
        inv.amount_due_s = fmt_number(inv.amount_due, loc)

    if not opts.us and rng.random() < opts.iban:
        iban = make_iban(loc.country, rng)
        if iban:
            inv.iban = iban
            inv.iban_s = group4(iban) if rng.random() < 0.75 else iban
            inv.bic = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4)) + loc.country + rng.choice(["2X", "MM", "FF", "22"]) + rng.choice(["", "XXX"])
    return inv
