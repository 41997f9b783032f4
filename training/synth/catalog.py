"""Things that get billed, per language, with plausible unit prices.

Each entry is (description, low price, high price, fractional quantities?).
Descriptions stay short so they fit a table cell on one line; the table
renderer still measures and shortens them if a narrow layout needs it.
"""

from __future__ import annotations

CATALOG: dict[str, list[tuple[str, float, float, bool]]] = {
    "en": [
        ("Consulting services", 80, 180, True), ("Software licence (annual)", 200, 2400, False),
        ("Web hosting - Business plan", 9, 60, False), ("Office chair, ergonomic", 120, 480, False),
        ("Printer toner, black", 25, 95, False), ("A4 copy paper, 500 sheets", 3, 9, False),
        ("On-site support", 60, 140, True), ("Project management", 70, 150, True),
        ("USB-C docking station", 90, 260, False), ("Monitor 27\" IPS", 160, 420, False),
        ("Cloud storage 1 TB", 5, 20, False), ("Translation EN>DE per page", 18, 45, False),
        ("Graphic design", 45, 110, True), ("Delivery charge", 5, 35, False),
        ("Wireless keyboard", 25, 90, False), ("Cleaning service", 20, 45, True),
        ("Training workshop (1 day)", 400, 1500, False), ("Maintenance contract Q2", 150, 900, False),
        ("Coffee beans 1 kg", 12, 30, False), ("Network cable Cat6, 5 m", 4, 15, False),
        ("Laptop stand, aluminium", 25, 70, False), ("Photography, half day", 250, 700, False),
        ("Domain renewal example.com", 10, 25, False), ("Installation labour", 40, 95, True),
    ],
    "de": [
        ("Beratungsleistung", 80, 180, True), ("Softwarelizenz (jährlich)", 200, 2400, False),
        ("Webhosting Paket Business", 9, 60, False), ("Bürostuhl ergonomisch", 120, 480, False),
        ("Tonerkartusche schwarz", 25, 95, False), ("Kopierpapier A4, 500 Blatt", 3, 9, False),
        ("Vor-Ort-Service", 60, 140, True), ("Projektmanagement", 70, 150, True),
        ("Dockingstation USB-C", 90, 260, False), ("Monitor 27 Zoll", 160, 420, False),
        ("Wartungsvertrag", 150, 900, False), ("Übersetzung DE>EN je Seite", 18, 45, False),
        ("Grafikdesign", 45, 110, True), ("Versandkosten", 5, 35, False),
        ("Tastatur kabellos", 25, 90, False), ("Unterhaltsreinigung", 20, 45, True),
        ("Schulung (Tagessatz)", 400, 1500, False), ("Montagearbeiten", 40, 95, True),
        ("Kaffeebohnen 1 kg", 12, 30, False), ("Netzwerkkabel Cat6, 5 m", 4, 15, False),
        ("Fahrtkosten Pauschale", 20, 80, False), ("Schrauben M6 (100 Stk.)", 4, 12, False),
        ("Elektroinstallation", 45, 90, True), ("Fotografie Halbtag", 250, 700, False),
    ],
    "fr": [
        ("Prestation de conseil", 80, 180, True), ("Licence logicielle (annuelle)", 200, 2400, False),
        ("Hébergement web - offre Pro", 9, 60, False), ("Fauteuil de bureau", 120, 480, False),
        ("Cartouche de toner noir", 25, 95, False), ("Papier A4, ramette 500 f.", 3, 9, False),
        ("Intervention sur site", 60, 140, True), ("Gestion de projet", 70, 150, True),
        ("Station d'accueil USB-C", 90, 260, False), ("Écran 27 pouces", 160, 420, False),
        ("Contrat de maintenance", 150, 900, False), ("Traduction FR>EN par page", 18, 45, False),
        ("Création graphique", 45, 110, True), ("Frais de port", 5, 35, False),
        ("Clavier sans fil", 25, 90, False), ("Nettoyage des locaux", 20, 45, True),
        ("Formation (1 jour)", 400, 1500, False), ("Main d'oeuvre", 40, 95, True),
        ("Café en grains 1 kg", 12, 30, False), ("Câble réseau Cat6, 5 m", 4, 15, False),
        ("Frais de déplacement", 20, 80, False), ("Reportage photo", 250, 700, False),
    ],
    "nl": [
        ("Advieswerkzaamheden", 80, 180, True), ("Softwarelicentie (jaar)", 200, 2400, False),
        ("Webhosting Zakelijk", 9, 60, False), ("Bureaustoel ergonomisch", 120, 480, False),
        ("Tonercartridge zwart", 25, 95, False), ("Kopieerpapier A4, 500 vel", 3, 9, False),
        ("Service op locatie", 60, 140, True), ("Projectmanagement", 70, 150, True),
        ("USB-C dockingstation", 90, 260, False), ("Monitor 27 inch", 160, 420, False),
        ("Onderhoudscontract", 150, 900, False), ("Vertaling NL>EN per pagina", 18, 45, False),
        ("Grafisch ontwerp", 45, 110, True), ("Verzendkosten", 5, 35, False),
        ("Draadloos toetsenbord", 25, 90, False), ("Schoonmaakwerkzaamheden", 20, 45, True),
        ("Training (1 dag)", 400, 1500, False), ("Arbeidsloon installatie", 40, 95, True),
        ("Koffiebonen 1 kg", 12, 30, False), ("Netwerkkabel Cat6, 5 m", 4, 15, False),
        ("Reiskosten", 20, 80, False), ("Fotoreportage", 250, 700, False),
    ],
}

# Standard and reduced VAT rates per vendor country (percent).
VAT_RATES = {
    "GB": (20, 5), "IE": (23, 13.5), "DE": (19, 7), "AT": (20, 10), "CH": (8.1, 2.6), "FR": (20, 5.5),
    "NL": (21, 9), "BE": (21, 6), "SE": (25, 12), "PL": (23, 8), "US": (8.875, 6.25), "IN": (18, 12),
}
