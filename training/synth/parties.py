"""Who is on the invoice: vendors, buyers, addresses, VAT ids and IBANs.

Names and addresses come from Faker in the vendor's locale; IBANs carry real
mod-97 check digits and VAT ids pass python-stdnum's checks, so the service's
validation rules see plausible identifiers, not noise.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from faker import Faker

IBAN_BBAN = {  # country: BBAN pattern (A = letter, 9 = digit)
    "GB": "AAAA99999999999999", "IE": "AAAA99999999999999", "DE": "999999999999999999",
    "AT": "9999999999999999", "CH": "99999999999999999", "FR": "99999999999999999999999",
    "NL": "AAAA9999999999", "BE": "999999999999", "SE": "99999999999999999999",
    "PL": "999999999999999999999999",
}


def safe_text(text: str) -> str:
    """Keep what the PDF core fonts (cp1252) can print; strip accents elsewhere."""
    out = []
    for ch in text:
        try:
            ch.encode("cp1252")
            out.append(ch)
        except UnicodeEncodeError:
            out.append(unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode())
    return "".join(out)


def iban_check_digits(country: str, bban: str) -> str:
    """ISO 13616 check digits: 98 - (BBAN + country + '00' as digits) mod 97."""
    digits = "".join(str(int(c, 36)) for c in (bban + country + "00"))
    return f"{98 - int(digits) % 97:02d}"


def make_iban(country: str, rng: random.Random) -> str | None:
    pattern = IBAN_BBAN.get(country)
    if pattern is None:
        return None
    bban = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") if p == "A" else rng.choice("0123456789") for p in pattern)
    return country + iban_check_digits(country, bban) + bban


def iban_is_valid(iban: str) -> bool:
    iban = iban.replace(" ", "")
    digits = "".join(str(int(c, 36)) for c in iban[4:] + iban[:4])
    return int(digits) % 97 == 1


def group4(s: str) -> str:
    return " ".join(s[i:i + 4] for i in range(0, len(s), 4))


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def make_vat_id(country: str, rng: random.Random) -> tuple[str, str]:
    """A (printed, compact) VAT id that passes the country's checksum."""
    from stdnum import luhn
    from stdnum.at import uid as at_uid
    from stdnum.ch import uid as ch_uid
    from stdnum.fr import siren
    from stdnum.iso7064 import mod_11_10

    if country == "DE":
        body = _digits(rng, 1).replace("0", "1") + _digits(rng, 7)
        compact = "DE" + body + mod_11_10.calc_check_digit(body)
        return (compact if rng.random() < 0.7 else f"DE {compact[2:5]} {compact[5:8]} {compact[8:]}"), compact
    if country == "AT":
        body = _digits(rng, 7)
        compact = "ATU" + body + at_uid.calc_check_digit("U" + body)
        return compact, compact
    if country == "CH":
        while True:
            body = _digits(rng, 8)
            check = ch_uid.calc_check_digit(body)
            if check != "10":
                break
        num = body + check
        printed = f"CHE-{num[:3]}.{num[3:6]}.{num[6:]} " + rng.choice(["MWST", "TVA"])
        return printed, "CHE" + num
    if country == "FR":
        s = _digits(rng, 8).replace("0", "3", 1)
        s = s + luhn.calc_check_digit(s)
        key = (12 + 3 * (int(s) % 97)) % 97
        compact = f"FR{key:02d}{s}"
        return (compact if rng.random() < 0.6 else f"FR {key:02d} {s[:3]} {s[3:6]} {s[6:]}"), compact
    if country == "BE":
        body = "0" + str(rng.randint(2000000, 9999999))
        compact = "BE" + body + f"{97 - int(body) % 97:02d}"
        return (compact if rng.random() < 0.6 else f"BE {compact[2:6]}.{compact[6:9]}.{compact[9:]}"), compact
    if country == "NL":
        while True:
            body = _digits(rng, 9)
            if body[0] != "0" and sum((9 - i) * int(c) for i, c in enumerate(body[:8])) % 11 == int(body[8]):
                compact = "NL" + body + "B01"
                return compact, compact
    if country == "GB":
        while True:
            body = _digits(rng, 9)
            total = sum(w * int(c) for w, c in zip((8, 7, 6, 5, 4, 3, 2, 10, 1), body))
            if total % 97 in (0, 42) and body[0] != "0":
                compact = "GB" + body
                return (compact if rng.random() < 0.5 else f"GB {body[:3]} {body[3:7]} {body[7:]}"), compact
    if country == "PL":
        weights = (6, 5, 7, 2, 3, 4, 5, 6, 7)
        while True:
            body = _digits(rng, 9)
            check = sum(w * int(c) for w, c in zip(weights, body)) % 11
            if check < 10:
                compact = "PL" + body + str(check)
                return compact, compact
    if country == "SE":
        body = _digits(rng, 9).replace("0", "5", 1)  # organisation number: 9 digits + Luhn
        body = body + luhn.calc_check_digit(body)
        compact = "SE" + body + "01"
        return compact, compact
    if country == "IE":
        body = _digits(rng, 7)
        letters = "WABCDEFGHIJKLMNOPQRSTUV"
        check = letters[sum((8 - i) * int(c) for i, c in enumerate(body)) % 23]
        compact = "IE" + body + check
        return compact, compact
    if country == "IN":  # GSTIN: state code, the company's PAN, entity number, "Z", Luhn mod 36
        letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        pan = "".join(rng.choice(letters) for _ in range(3)) + "C" + rng.choice(letters) + _digits(rng, 4) + rng.choice(letters)
        body = f"{rng.randint(1, 37):02d}{pan}{rng.randint(1, 9)}Z"
        compact = body + luhn.calc_check_digit(body, "0123456789" + letters)
        return compact, compact
    if country == "US":
        ein = f"{rng.randint(10, 98)}-{_digits(rng, 7)}"
        return ein, ein
    raise ValueError(country)


@lru_cache(maxsize=None)
def faker_for(locale_code: str) -> Faker:
    return Faker(locale_code)


@dataclass
class Party:
    name: str
    address_lines: list[str]
    email: str
    phone: str


def make_party(locale_code: str, seed: int, company: bool = True) -> Party:
    """A vendor or buyer; Faker is re-seeded so the result depends on *seed* only."""
    fk = faker_for(locale_code)
    fk.seed_instance(seed)
    name = fk.company() if company else f"{fk.first_name()} {fk.last_name()}"
    lines = [safe_text(l.strip()) for l in fk.address().split("\n") if l.strip()]
    lines = _join_postcodes(lines)
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    domain = "".join(c for c in ascii_name if c.isalnum())[:14] or "example"
    email = f"{rng_word(seed)}@{domain}.{ {'de': 'de', 'fr': 'fr', 'nl': 'nl'}.get(locale_code[:2], 'com') }"
    return Party(safe_text(name), lines, email.replace(" ", ""), safe_text(fk.phone_number()))


def _join_postcodes(lines: list[str]) -> list[str]:
    """Faker sometimes puts a bare postcode on its own line; print it with its city."""
    out: list[str] = []
    for line in lines:
        if out and re.fullmatch(r"\d{4,5}|\d{4} ?[A-Z]{2}|[A-Z0-9]{2,4} ?[0-9][A-Z0-9]{2}", out[-1]) and len(out) > 1:
            prev = out.pop()
            if re.fullmatch(r"\d{4}[A-Z]{2}", prev):
                prev = prev[:4] + " " + prev[4:]
            out.append(f"{prev} {line}")
        else:
            out.append(line)
    return out


def rng_word(seed: int) -> str:
    return random.Random(seed).choice(["info", "billing", "accounts", "sales", "office", "invoices", "hello"])
