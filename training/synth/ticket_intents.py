"""What customers write about: intents per helpdesk category, in English and German.

Each intent has message bodies with slots ({order}, {invoice}, {product}) and
an English summary template; the category is the ticket schema's enum value.
The category names follow ../shared/data/bitext (lower-cased) plus
technical_issue and other.
"""

from __future__ import annotations

# (category, intent, uses, summary, {lang: [bodies]}); uses: which slots the bodies need
INTENTS: list[tuple[str, str, str, str, dict[str, list[str]]]] = [
    ("order", "cancel_order", "order", "Customer wants to cancel order {order}.", {
        "en": ["I would like to cancel my order {order}. I ordered the {product} by mistake.",
               "Please cancel order {order}, I found the {product} cheaper elsewhere.",
               "can you cancel {order} before it ships? i dont need it anymore"],
        "de": ["ich möchte meine Bestellung {order} stornieren. Ich habe den {product} versehentlich bestellt.",
               "Bitte stornieren Sie die Bestellung {order}, ich brauche den Artikel nicht mehr."]}),
    ("order", "change_order", "order", "Customer wants to change the items in order {order}.", {
        "en": ["I need to change my order {order}: instead of one {product} I want two.",
               "Is it still possible to modify order {order}? I picked the wrong colour of the {product}."],
        "de": ["kann ich die Bestellung {order} noch ändern? Ich hätte den {product} gern in Schwarz statt Weiß.",
               "Ich möchte in Auftrag {order} die Menge auf zwei Stück erhöhen."]}),
    ("order", "track_order", "order", "Customer asks where order {order} is.", {
        "en": ["Where is my order {order}? It has been a week and the tracking page shows nothing.",
               "Could you tell me the status of order {order}? I'm waiting for the {product}."],
        "de": ["wo bleibt meine Bestellung {order}? Die Sendungsverfolgung zeigt seit Tagen nichts an.",
               "Können Sie mir sagen, wann Bestellung {order} ankommt? Ich warte auf den {product}."]}),
    ("order", "place_order", "none", "Customer wants help placing an order.", {
        "en": ["I'm trying to order the {product} but can't get past the checkout. Can you place the order for me?",
               "How do I order 5 units of the {product} for our office?"],
        "de": ["Ich möchte den {product} bestellen, komme aber im Bestellvorgang nicht weiter. Können Sie helfen?",
               "Wie kann ich den {product} in größerer Menge für unsere Firma bestellen?"]}),
    ("delivery", "delivery_period", "order?", "Customer asks how long delivery takes.", {
        "en": ["How long does delivery to Austria usually take? I need the {product} by Friday.",
               "What is the expected delivery time for order {order}?"],
        "de": ["Wie lange dauert die Lieferung nach Österreich? Ich brauche den {product} bis Freitag.",
               "Wie ist die voraussichtliche Lieferzeit für Bestellung {order}?"]}),
    ("delivery", "delivery_options", "none", "Customer asks about delivery options.", {
        "en": ["Do you offer express or next-day delivery? And can I pick up the {product} in a store?",
               "Which delivery options do you have for large items?"],
        "de": ["Bieten Sie auch Expresslieferung an? Kann ich den {product} auch abholen?",
               "Welche Versandoptionen gibt es für Sperrgut?"]}),
    ("shipping_address", "change_shipping_address", "order?", "Customer wants to change the shipping address of order {order}.", {
        "en": ["I moved last week. Please send order {order} to my new address: 14 Harbour Road, Leeds LS2 7EE.",
               "I entered the wrong shipping address for {order}, the flat number is 4B, not 48."],
        "de": ["ich bin umgezogen. Bitte liefern Sie die Bestellung {order} an meine neue Adresse: Lindenweg 5, 80331 München.",
               "Bei Bestellung {order} ist die Hausnummer falsch, richtig ist 12a."]}),
    ("shipping_address", "set_up_shipping_address", "none", "Customer needs help adding a shipping address.", {
        "en": ["I can't save a second shipping address in my account, the form keeps resetting.",
               "How do I set up a different delivery address for my office?"],
        "de": ["Ich kann in meinem Konto keine zweite Lieferadresse hinterlegen.",
               "Wie richte ich eine abweichende Lieferadresse ein?"]}),
    ("invoice", "get_invoice", "order?", "Customer requests the invoice for order {order}.", {
        "en": ["Could you send me the invoice for order {order}? Our accounting needs it with our VAT number.",
               "I still haven't received an invoice for my purchase of the {product}."],
        "de": ["Können Sie mir bitte die Rechnung zu Bestellung {order} schicken? Unsere Buchhaltung braucht sie.",
               "Ich habe für den {product} noch keine Rechnung erhalten."]}),
    ("invoice", "check_invoice", "invoice", "Customer questions an amount on invoice {invoice}.", {
        "en": ["Invoice {invoice} charges me twice for shipping. Can you check and correct it?",
               "The amount on invoice {invoice} doesn't match the price I was quoted."],
        "de": ["Auf der Rechnung {invoice} wurden die Versandkosten doppelt berechnet. Bitte prüfen Sie das.",
               "Der Betrag auf Rechnung {invoice} stimmt nicht mit dem Angebot überein."]}),
    ("payment", "payment_issue", "order?", "Customer reports a failed payment.", {
        "en": ["My card was declined three times when paying for order {order}, but the bank says everything is fine.",
               "I paid for the {product} but the money was taken twice from my account."],
        "de": ["Die Zahlung für Bestellung {order} wird immer abgelehnt, obwohl meine Karte funktioniert.",
               "Mir wurde der Betrag für den {product} zweimal abgebucht."]}),
    ("payment", "check_payment_methods", "none", "Customer asks which payment methods are accepted.", {
        "en": ["Can I pay by bank transfer or PayPal? I don't have a credit card.",
               "Which payment methods do you accept for business customers?"],
        "de": ["Kann ich auch per Überweisung oder auf Rechnung bezahlen?",
               "Welche Zahlungsarten bieten Sie für Firmenkunden an?"]}),
    ("refund", "get_refund", "order?", "Customer wants a refund for order {order}.", {
        "en": ["I returned the {product} two weeks ago and want my money back for order {order}.",
               "The {product} arrived broken. I want a full refund, not a replacement."],
        "de": ["Ich habe den {product} vor zwei Wochen zurückgeschickt und möchte mein Geld für Bestellung {order} zurück.",
               "Der {product} kam defekt an. Ich möchte den Kaufpreis erstattet bekommen."]}),
    ("refund", "track_refund", "order?", "Customer asks about the status of a refund.", {
        "en": ["When will I get the refund for order {order}? You confirmed the return ten days ago.",
               "Still no refund on my card for the returned {product}."],
        "de": ["Wann bekomme ich die Erstattung für Bestellung {order}? Die Rücksendung wurde vor zehn Tagen bestätigt.",
               "Die Gutschrift für den zurückgesendeten {product} ist immer noch nicht da."]}),
    ("refund", "check_refund_policy", "none", "Customer asks about the refund policy.", {
        "en": ["What is your refund policy for opened items like the {product}?",
               "How many days do I have to return something for a refund?"],
        "de": ["Wie sind Ihre Rückgabebedingungen für geöffnete Artikel wie den {product}?",
               "Wie lange habe ich Zeit, einen Artikel zurückzugeben?"]}),
    ("cancellation_fee", "check_cancellation_fee", "order?", "Customer asks whether a cancellation fee applies.", {
        "en": ["Is there a fee if I cancel my subscription before the end of the year?",
               "Will I be charged a cancellation fee for order {order}?"],
        "de": ["Fällt eine Stornogebühr an, wenn ich mein Abo vorzeitig kündige?",
               "Kostet die Stornierung von Bestellung {order} etwas?"]}),
    ("account", "recover_password", "none", "Customer cannot log in and needs a password reset.", {
        "en": ["I forgot my password and the reset email never arrives. Please help me get back into my account.",
               "can't log in anymore, password reset link says expired"],
        "de": ["Ich habe mein Passwort vergessen und die E-Mail zum Zurücksetzen kommt nicht an.",
               "Ich komme nicht mehr in mein Konto, der Link zum Zurücksetzen ist abgelaufen."]}),
    ("account", "delete_account", "none", "Customer wants the account deleted.", {
        "en": ["Please delete my account and all my personal data.",
               "I want to close my account, how do I do that?"],
        "de": ["Bitte löschen Sie mein Kundenkonto und alle meine Daten.",
               "Wie kann ich mein Konto dauerhaft schließen?"]}),
    ("account", "edit_account", "none", "Customer wants to update account details.", {
        "en": ["I got married and need to change the name on my account.",
               "How can I update the phone number in my profile?"],
        "de": ["Ich möchte den Namen in meinem Kundenkonto ändern.",
               "Wie ändere ich meine Telefonnummer im Profil?"]}),
    ("account", "registration_problems", "none", "Customer cannot register an account.", {
        "en": ["I'm trying to sign up but the form says my email is invalid.",
               "Registration fails with an error every time I submit."],
        "de": ["Ich kann mich nicht registrieren, es kommt immer eine Fehlermeldung.",
               "Beim Anlegen eines Kontos wird meine E-Mail-Adresse als ungültig abgelehnt."]}),
    ("contact", "contact_human_agent", "none", "Customer wants to speak to a human agent.", {
        "en": ["Your chatbot is useless. I want to talk to a real person.",
               "Can someone from your team call me back? The automated answers don't help."],
        "de": ["Ich möchte bitte mit einem echten Mitarbeiter sprechen, nicht mit dem Chatbot.",
               "Kann mich jemand aus Ihrem Team zurückrufen?"]}),
    ("contact", "contact_customer_service", "none", "Customer asks how to reach customer service.", {
        "en": ["What are your customer service opening hours? Is there a phone number?",
               "How can I reach your support team by phone?"],
        "de": ["Wann ist Ihr Kundenservice telefonisch erreichbar?",
               "Unter welcher Nummer erreiche ich den Kundendienst?"]}),
    ("feedback", "complaint", "order?", "Customer complains about the service.", {
        "en": ["The {product} I received for order {order} was used and dirty. This is not what I paid for.",
               "Your courier left the parcel in the rain and the {product} is ruined."],
        "de": ["Der {product} aus Bestellung {order} war gebraucht und verschmutzt. Das ist nicht akzeptabel.",
               "Der Paketbote hat das Paket im Regen abgestellt, der {product} ist kaputt."]}),
    ("feedback", "review", "none", "Customer gives feedback on the {product}.", {
        "en": ["Just wanted to say the {product} works great, setup took five minutes.",
               "Some feedback on the {product}: the battery life is much shorter than advertised."],
        "de": ["Ich wollte nur sagen, dass der {product} super funktioniert.",
               "Feedback zum {product}: Der Akku hält deutlich kürzer als angegeben."]}),
    ("newsletter", "newsletter_subscription", "none", "Customer wants to unsubscribe from the newsletter.", {
        "en": ["Please take me off your newsletter, I get three emails a day.",
               "How do I unsubscribe from your marketing emails?"],
        "de": ["Bitte tragen Sie mich aus dem Newsletter aus.",
               "Wie kann ich Ihren Newsletter abbestellen?"]}),
    ("technical_issue", "technical_issue", "none", "Customer reports that the {product} does not work.", {
        "en": ["The {product} stopped connecting to wifi after the last update. I already restarted it twice.",
               "The app crashes every time I open the settings page on my {product}."],
        "de": ["Der {product} verbindet sich seit dem letzten Update nicht mehr mit dem WLAN.",
               "Die App stürzt jedes Mal ab, wenn ich die Einstellungen des {product} öffne."]}),
    ("other", "other", "none", "Customer asks a general question.", {
        "en": ["Do you have a store in Manchester? I'd like to see the {product} before buying.",
               "Are you hiring? I'd love to work for your company."],
        "de": ["Haben Sie eine Filiale in Hamburg? Ich würde mir den {product} gern vorher ansehen.",
               "Sind Ihre Verpackungen recycelbar?"]}),
]

PRODUCTS = ["Nimbus X2 headphones", "AquaPure 3000 filter", "TrailRunner 5", "CloudSync Pro", "Lumen desk lamp",
            "Brewmaster espresso machine", "SmartPlug Mini", "Orbit e-bike", "Vela 12 tablet", "KettlePro 1.7L",
            "Atlas backpack", "PixelCam 4K", "Zephyr fan", "Nova smartwatch", "ErgoDesk frame"]
