"""Word lists for believable company and people names, by country."""
from __future__ import annotations

# country → (weight, legal suffix, VAT id type or None, first names, last names)
COUNTRIES: dict[str, tuple[int, str, str | None, tuple[str, ...], tuple[str, ...]]] = {
    "DK": (24, "ApS", "eu_vat", ("Mette", "Lars", "Sofie", "Mads", "Ida", "Rasmus", "Freja", "Jonas", "Anne", "Søren"),
           ("Jensen", "Nielsen", "Hansen", "Pedersen", "Andersen", "Christensen", "Larsen", "Sørensen", "Rasmussen")),
    "SE": (10, "AB", "eu_vat", ("Elsa", "Erik", "Maja", "Oskar", "Astrid", "Lukas", "Ebba", "Nils"),
           ("Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Lindqvist", "Berg")),
    "NO": (6, "AS", None, ("Ingrid", "Ola", "Nora", "Henrik", "Sigrid", "Magnus", "Thea"),
           ("Hansen", "Johansen", "Olsen", "Berg", "Haugen", "Solberg", "Bakke")),
    "DE": (14, "GmbH", "eu_vat", ("Lena", "Jonas", "Anna", "Felix", "Marie", "Paul", "Hannah", "Lukas"),
           ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Wagner", "Becker", "Hoffmann")),
    "NL": (7, "B.V.", "eu_vat", ("Sanne", "Daan", "Fleur", "Bram", "Lotte", "Sem", "Noor"),
           ("de Jong", "Jansen", "de Vries", "van den Berg", "Bakker", "Visser", "Smit")),
    "FI": (4, "Oy", "eu_vat", ("Aino", "Eetu", "Helmi", "Onni", "Venla", "Leevi"),
           ("Korhonen", "Virtanen", "Mäkinen", "Nieminen", "Heikkinen")),
    "GB": (14, "Ltd", "gb_vat", ("Olivia", "Harry", "Amelia", "George", "Isla", "Noah", "Grace", "Jack"),
           ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans", "Thomas")),
    "US": (15, "Inc.", "us_ein", ("Emma", "Liam", "Ava", "Ethan", "Mia", "Mason", "Harper", "Logan"),
           ("Johnson", "Miller", "Davis", "Garcia", "Rodriguez", "Martinez", "Anderson", "Clark")),
    "FR": (6, "SAS", "eu_vat", ("Léa", "Hugo", "Chloé", "Louis", "Camille", "Jules", "Inès"),
           ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit")),
}

COMPANY_FIRST = ("Fjord", "Nordlys", "Birch", "Harbor", "Copper", "Granite", "Lumen", "Saga", "Aurora", "Kestrel",
                 "Meridian", "Pinecone", "Tundra", "Bluefin", "Cobalt", "Ember", "Juniper", "Larkspur", "Mistral",
                 "Nimbus", "Orchid", "Quartz", "Rune", "Solstice", "Timber", "Vanguard", "Willow", "Zephyr", "Atlas",
                 "Beacon", "Cascade", "Driftwood", "Evergreen", "Falcon", "Glacier", "Heron", "Iris", "Kelp")
COMPANY_SECOND = ("Analytics", "Labs", "Logistics", "Studio", "Health", "Robotics", "Payments", "Learning", "Foods",
                  "Energy", "Systems", "Consulting", "Design", "Ventures", "Software", "Media", "Works", "Data",
                  "Mobility", "Legal", "Architects", "Marine", "Security", "Retail")

TITLES = ("CEO", "CTO", "Head of Finance", "Office Manager", "Developer", "Designer", "Product Manager",
          "Account Manager", "Operations Lead", "Controller", None, None, None)
