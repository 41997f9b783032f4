"""Support tickets as e-mails: greeting, request, cues, signature, quoted reply.

The intent is chosen first, then its category, priority and sentiment; the
message is assembled to carry exactly those cues, so labels are known from
construction. Identifiers appear verbatim; typos never touch them.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator

from .example import Example
from .parties import faker_for, safe_text
from .ticket_intents import INTENTS, PRODUCTS

TICKET_FIELDS = ("customer_name", "customer_email", "order_id", "invoice_id", "product", "category", "priority",
                 "sentiment", "language", "summary")

GREETINGS = {"en": ["Hi,", "Hello,", "Hi there,", "Dear Sir or Madam,", "Hello support team,", "Hey,", ""],
             "de": ["Hallo,", "Guten Tag,", "Sehr geehrte Damen und Herren,", "Hallo zusammen,", "Moin,", ""]}
CLOSINGS = {"en": ["Thanks,", "Best regards,", "Kind regards,", "Cheers,", "Regards,", "Thank you,"],
            "de": ["Viele Grüße", "Mit freundlichen Grüßen", "Danke und Gruß", "Beste Grüße", "LG"]}
PRIORITY_CUES = {
    "urgent": {"en": ["This is URGENT, please help immediately!", "I need this sorted asap, it's an emergency.",
                      "Please treat this as urgent - I need an answer today."],
               "de": ["Das ist DRINGEND, bitte sofort bearbeiten!", "Bitte sofort melden, es eilt sehr!",
                      "Ich brauche heute noch eine Lösung, das ist dringend."]},
    "high": {"en": ["Please get back to me as soon as possible.", "I'd appreciate a quick reply, this is important."],
             "de": ["Bitte melden Sie sich schnellstmöglich.", "Ich bitte um zeitnahe Rückmeldung, es ist wichtig."]},
    "medium": {"en": ["", "Please let me know."], "de": ["", "Bitte geben Sie mir Bescheid."]},
    "low": {"en": ["No rush, whenever you get a chance.", "Not urgent at all, just wondering."],
            "de": ["Keine Eile, wenn Sie Zeit haben.", "Nicht dringend, nur eine Frage."]},
}
SENTIMENT_CUES = {
    "negative": {"en": ["I'm really disappointed.", "This is unacceptable.", "Honestly, I'm fed up with this.",
                        "Very frustrating experience so far."],
                 "de": ["Ich bin wirklich enttäuscht.", "Das ist inakzeptabel.", "Ich bin sehr verärgert.",
                        "So ein Ärger, ehrlich."]},
    "neutral": {"en": [""], "de": [""]},
    "positive": {"en": ["Love your products, by the way!", "Thanks so much, your service has always been great.",
                        "You guys are awesome, thanks in advance!"],
                 "de": ["Ansonsten bin ich sehr zufrieden mit Ihnen!", "Vielen Dank, Ihr Service ist super.",
                        "Danke im Voraus, Sie sind klasse!"]},
}
FILLER = {"en": ["It's the second time I'm writing about this.", "I checked my spam folder too.","I ordered through your website last week.", "I've been a customer for years.",
                  "I already tried the FAQ but it didn't help.", "My partner also tried calling, without luck.",
                  "I hope you can sort this out for me."],
          "de": ["Ich schreibe Ihnen bereits zum zweiten Mal.", "Den Spam-Ordner habe ich auch geprüft.",
                 "Ich habe letzte Woche über Ihre Webseite bestellt.", "Ich bin seit Jahren Kunde bei Ihnen.",
                 "In den FAQ habe ich leider nichts gefunden.", "Telefonisch habe ich niemanden erreicht.",
                 "Ich hoffe, Sie können mir weiterhelfen."]}
DE_SUBJECT = {"order": "Bestellung", "refund": "Erstattung", "invoice": "Rechnung", "payment": "Zahlung",
              "delivery": "Lieferung", "account": "Kundenkonto", "shipping_address": "Lieferadresse",
              "newsletter": "Newsletter", "technical_issue": "Technisches Problem", "feedback": "Feedback",
              "cancellation_fee": "Stornogebühr", "contact": "Kontakt", "other": "Frage"}
EN_SUBJECT = {"order": "My order", "refund": "Refund", "invoice": "Invoice question", "payment": "Payment problem",
              "delivery": "Delivery", "account": "Account", "shipping_address": "Shipping address",
              "newsletter": "Newsletter", "technical_issue": "Not working", "feedback": "Feedback",
              "cancellation_fee": "Cancellation fee?", "contact": "Contact", "other": "Question"}
ORDER_WORD = {"en": "my order", "de": "meine Bestellung"}
SUBJECT = {"en": "Subject", "de": "Betreff"}
QUOTE_INTRO = {"en": "On {d}, Customer Support <support@shop.example> wrote:",
               "de": "Am {d} schrieb Kundenservice <support@shop.example>:"}
QUOTED = {"en": ["Thank you for contacting us. We have received your request and will get back to you shortly.",
                 "Could you please send us your order number so we can look into this?"],
          "de": ["Vielen Dank für Ihre Nachricht. Wir kümmern uns schnellstmöglich um Ihr Anliegen.",
                 "Könnten Sie uns bitte Ihre Bestellnummer mitteilen?"]}


def order_id(rng: random.Random) -> tuple[str, str]:
    """(as written, id) in the many formats shops use."""
    y = rng.randint(2021, 2025)
    ident = rng.choice([
        str(rng.randint(10000, 999999)), f"ORD-{y}-{rng.randint(1, 99999):05d}", str(rng.randint(10**11, 10**15)),
        f"{rng.choice('ABCDEKXZ')}-{rng.randint(10, 99)}-{''.join(rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ') for _ in range(2))}",
        f"{rng.randint(100, 999)}-{rng.randint(1000000, 9999999)}-{rng.randint(1000000, 9999999)}",
        f"WEB{rng.randint(100000, 999999)}", f"SO{y % 100}{rng.randint(10000, 99999)}", f"#{rng.randint(1000, 99999)}",
    ])
    shown = ident
    if ident.isdigit() and rng.random() < 0.3:
        shown = "#" + ident
    return shown, ident.lstrip("#")


def invoice_id(rng: random.Random) -> str:
    y = rng.randint(2021, 2025)
    return rng.choice([f"INV-{y}-{rng.randint(1, 9999):04d}", f"RE{y}{rng.randint(1000, 99999)}",
                       f"{rng.randint(10000000, 99999999)}", f"F-{rng.randint(100, 999)}/{y}"])


def _typos(text: str, rng: random.Random, protected: list[str], rate: float) -> str:
    """Swap or drop letters in a few words, never inside identifiers or names."""
    def touch(m: re.Match) -> str:
        word = m.group(0)
        if len(word) < 5 or rng.random() > rate or any(word in p for p in protected if p):
            return word
        i = rng.randint(1, len(word) - 3)
        return word[:i] + word[i + 1] + word[i] + word[i + 2:] if rng.random() < 0.6 else word[:i] + word[i + 1:]
    return re.sub(r"[A-Za-zÄÖÜäöüß]+", touch, text)


def _fill_order(body: str, lang: str, shown: str | None) -> str:
    if shown is not None:
        return body.replace("{order}", shown)
    if lang == "de":
        return re.sub(r" ?\{order\}", "", body)
    body = re.sub(r"order \{order\}", ORDER_WORD["en"], body)
    return body.replace("{order}", ORDER_WORD["en"])


def build_ticket(rng: random.Random, intent_index: int, lang: str) -> tuple[str, dict]:
    category, intent, uses, summary, bodies = INTENTS[intent_index]
    body = rng.choice(bodies[lang])
    fk = faker_for("de_DE" if lang == "de" else rng.choice(["en_GB", "en_US", "en_IE"]))
    fk.seed_instance(rng.getrandbits(32))
    first, last = safe_text(fk.first_name()), safe_text(fk.last_name())
    full = f"{first} {last}"

    shown = oid = None
    if "{order}" in body and (uses == "order" or rng.random() < 0.7):
        shown, oid = order_id(rng)
    body = _fill_order(body, lang, shown)
    product = rng.choice(PRODUCTS) if "{product}" in body and rng.random() < 0.75 else None
    body = body.replace("{product}", product or ("item" if lang == "en" else "Artikel"))
    inv_id = None
    if "{invoice}" in body:
        inv_id = invoice_id(rng)
        body = body.replace("{invoice}", inv_id)
    elif category in ("payment", "refund", "invoice") and rng.random() < 0.25:
        inv_id = invoice_id(rng)
        body += f" ({'Invoice no.' if lang == 'en' else 'Rechnungsnr.'} {inv_id})"

    priority = rng.choices(["low", "medium", "high", "urgent"], [2, 4, 3, 2])[0]
    if intent in ("review", "newsletter_subscription", "check_payment_methods", "delivery_options") and priority == "urgent":
        priority = "medium"
    sentiment = {"complaint": "negative", "contact_human_agent": "negative"}.get(intent) or \
        rng.choices(["negative", "neutral", "positive"], [3, 5, 2])[0]
    if intent == "review":
        sentiment = "positive" if "great" in body or "super" in body else "negative"

    parts = []
    greeting = rng.choice(GREETINGS[lang])
    if greeting:
        parts.append(greeting)
    name_in_text = rng.random() < 0.75
    intro = ""
    if name_in_text and rng.random() < 0.25:
        intro = f"my name is {full}. " if lang == "en" else f"mein Name ist {full}. "
        intro = intro if greeting else intro[0].upper() + intro[1:]
    if not intro and not greeting:
        body = body[0].upper() + body[1:]
    fillers = rng.sample(FILLER[lang], rng.choice([1, 1, 2, 2, 3]))
    text_body = " ".join([intro + body] + fillers)
    sent_cue = rng.choice(SENTIMENT_CUES[sentiment][lang])
    prio_cue = rng.choice(PRIORITY_CUES[priority][lang])
    extra = [c for c in (sent_cue, prio_cue) if c]
    rng.shuffle(extra)
    parts.append(" ".join([text_body] + extra))
    email = None
    if rng.random() < 0.6:
        user = rng.choice([f"{first}.{last}", f"{first[0]}{last}", f"{first}{rng.randint(1, 99)}", f"{last}.{first[0]}"])
        user = re.sub(r"[^a-z0-9.]", "", safe_text(user).lower().encode("ascii", "ignore").decode())
        email = f"{user}@{rng.choice(['gmail.com', 'web.de', 'outlook.com', 'gmx.net', 'yahoo.co.uk', 'posteo.de', 'icloud.com'])}"
    closing = rng.choice(CLOSINGS[lang])
    sig = [closing]
    if name_in_text and not intro:
        sig.append(full if rng.random() < 0.8 else f"{full}\n{fk.phone_number()}")
    elif rng.random() < 0.3:
        sig.append(first)  # a first name alone is not the customer's full name: label comes from the header then
    parts.append("\n".join(sig))
    header = []
    if email and rng.random() < 0.6:
        header.append(f"From: {full} <{email}>" if name_in_text else f"From: {email}")
    elif email:
        parts[-1] += f"\n{email}"
    if rng.random() < 0.5:
        subj = (EN_SUBJECT if lang == "en" else DE_SUBJECT)[category]
        if shown and rng.random() < 0.5:
            subj += f" {shown}"
        if priority == "urgent":
            subj = ("URGENT: " if lang == "en" else "DRINGEND: ") + subj
        header.append(f"{SUBJECT[lang]}: {subj}")
    text = ("\n".join(header) + "\n\n" if header else "") + "\n\n".join(parts)
    if rng.random() < 0.2:
        d = f"{rng.randint(1, 28)}.{rng.randint(1, 12)}.{rng.randint(2023, 2025)}" if lang == "de" else \
            f"{rng.choice(['Mon', 'Tue', 'Wed', 'Thu', 'Fri'])}, {rng.randint(1, 28)} {rng.choice(['Jan', 'Mar', 'May', 'Sep', 'Nov'])} {rng.randint(2023, 2025)}"
        quoted = "\n".join("> " + line for line in [QUOTE_INTRO[lang].format(d=d), rng.choice(QUOTED[lang])])
        text += "\n\n" + quoted
    protected = [shown, inv_id, product, full, email]
    if rng.random() < 0.35:
        text = _typos(text, rng, protected, 0.12)

    customer_name = full if (name_in_text and full in text) else None
    if "{product}" in summary and not product:
        summary = summary.replace("the {product}", "a product")
    summ = summary.replace("{order}", oid or "").replace("{invoice}", inv_id or "").replace("{product}", product or "")
    if oid is None:
        summ = summ.replace("order .", "an order.").replace(" of order .", " of an order.").replace("for order .", "for an order.")
    summ = re.sub(r"\s+\.", ".", re.sub(r"order\s+\.", "an order.", summ))
    target = {"customer_name": customer_name, "customer_email": email if email and email in text else None,
              "order_id": oid, "invoice_id": inv_id, "product": product, "category": category,
              "priority": priority, "sentiment": sentiment, "language": lang, "summary": summ}
    return text, target


def generate_tickets(n: int, seed: int, languages: Iterable[str] = ("en", "de")) -> Iterator[Example]:
    """*n* tickets cycling through every intent (so every category appears) and the languages."""
    langs = tuple(languages)
    for i in range(n):
        rng = random.Random(f"ticket:{seed}:{i}")
        intent_index = (i + seed) % len(INTENTS)
        lang = langs[(i // len(INTENTS) + seed) % len(langs)] if len(langs) > 1 else langs[0]
        text, target = build_ticket(rng, intent_index, lang)
        yield Example(id=f"tkt-{seed}-{i:05d}", doc_type="ticket", text=text, target=target, labels=dict(target),
                      meta={"intent": INTENTS[intent_index][1], "language": lang})
