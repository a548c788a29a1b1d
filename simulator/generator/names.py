"""The vocabulary of generated people and places: names (plain, non-ASCII, with apostrophes),
titles, departments, offices, shared mailboxes, rooms, services and mail domains."""

from __future__ import annotations

# Real Microsoft 365 SKU ids (public): Microsoft 365 E3, Office 365 E3, Exchange Online (Plan 1),
# Microsoft 365 F1.
SKUS = (
    "05e9a617-0261-4cee-bb44-138d3ef5d965",
    "6fd2c87f-b296-42f0-b197-1e91e994b900",
    "4b9405b0-7788-4568-add1-99614e613b69",
    "44575883-256e-4a79-9da4-ebe9acabe2b2",
)

PLAIN_GIVEN = (
    "Adele",
    "Alex",
    "Ben",
    "Carla",
    "Daniel",
    "Emma",
    "Felix",
    "Grace",
    "Hannah",
    "Isaac",
    "Julia",
    "Karl",
    "Laura",
    "Megan",
    "Nina",
    "Oscar",
    "Paula",
    "Quentin",
    "Rosa",
    "Stefan",
    "Tom",
    "Uma",
    "Victor",
    "Wendy",
    "Yusuf",
    "Lee",
    "Maria",
    "Ivan",
)
PLAIN_SURNAMES = (
    "Vance",
    "Wilber",
    "Smith",
    "Müller",
    "Schmidt",
    "Johnson",
    "Garcia",
    "Brown",
    "Meyer",
    "Wagner",
    "Taylor",
    "Martin",
    "Dubois",
    "Rossi",
    "Novak",
    "Jensen",
    "Kowalski",
    "Fischer",
    "Weber",
    "Becker",
    "Hoffmann",
    "Clark",
    "Lewis",
    "Young",
)
# (display given, display surname, ascii given, ascii surname) for names no transliteration
# table would guess: Łukasz, 李 and friends.
NON_ASCII = (
    ("Zoë", "Björk", "zoe", "bjork"),
    ("Łukasz", "Wójcik", "lukasz", "wojcik"),
    ("Søren", "Kierkegård", "soren", "kierkegard"),
    ("José", "Núñez", "jose", "nunez"),
    ("伟", "李", "wei", "li"),
    ("Zoë", "Ångström", "zoe", "angstrom"),
    ("Chloé", "Lefèvre", "chloe", "lefevre"),
    ("Jürgen", "Groß", "jurgen", "gross"),
    ("Ólafur", "Þórsson", "olafur", "thorsson"),
    ("Dženan", "Čolić", "dzenan", "colic"),
    ("Ayşe", "Yıldız", "ayse", "yildiz"),
    ("Håkon", "Ødegaard", "hakon", "odegaard"),
)
APOSTROPHE_SURNAMES = ("O'Brien", "D'Angelo", "O'Neill", "D'Souza", "O'Connor")
TITLES = (
    "Software Engineer",
    "Account Manager",
    "HR Business Partner",
    "Sales Representative",
    "Controller",
    "Support Engineer",
    "Product Owner",
    "Warehouse Lead",
    "CFO",
    "Designer",
)
DEPARTMENTS = (
    "Engineering",
    "Sales",
    "Human Resources",
    "Finance",
    "Support",
    "Marketing",
    "Operations",
    "Legal",
    "R&D",
    "Logistics",
)
OFFICES = (
    ("Berlin", "Berlin", "10115", "Germany", "DE", "+49 30"),
    ("München", "Bayern", "80331", "Germany", "DE", "+49 89"),
    ("Redmond", "WA", "98052", "United States", "US", "+1 425"),
    ("London", "England", "EC1A 1BB", "United Kingdom", "GB", "+44 20"),
    ("Kraków", "Małopolskie", "30-001", "Poland", "PL", "+48 12"),
    ("København", "Hovedstaden", "1050", "Denmark", "DK", "+45 33"),
)
STREETS = (
    "Hauptstraße 1",
    "Friedrichstraße 68",
    "One Microsoft Way",
    "221B Baker Street",
    "ul. Floriańska 3",
    "Strøget 12",
)
SHARED = (
    "Sales Team",
    "Support",
    "Info",
    "Accounts Payable",
    "HR Inbox",
    "Marketing Team",
    "Reception",
    "Careers",
    "Press Office",
    "IT Helpdesk",
)
ROOM_CITIES = ("Berlin", "London", "München", "Redmond", "Kraków")
SERVICES = (
    "backup",
    "scanner",
    "sql-agent",
    "teams-rooms",
    "jira",
    "sap-connector",
    "intune",
    "printer",
    "monitoring",
    "ci",
)
EXTERNAL_DOMAINS = (
    "fabrikam.com",
    "northwindtraders.com",
    "adventure-works.com",
    "wingtiptoys.com",
    "gmail.example",
)
PRIVATE_DOMAINS = ("example.net", "example.org", "mail.example")
LANGUAGES = ("en-US", "de-DE", "en-GB", "pl-PL", "da-DK", None)
