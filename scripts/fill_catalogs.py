"""Fill the catalogs after `make messages`: en gets its msgids back, da gets the translations of a file.

    python scripts/fill_catalogs.py [translations.py]

The optional file defines `DA = {msgid: msgstr}` (a (singular, plural) tuple for plural messages). Prints
what is still missing in each language.
"""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent / "backoffice" / "translations"


def missing(message) -> bool:
    forms = message.string if isinstance(message.string, tuple) else (message.string,)
    return bool(message.id) and (message.fuzzy or not forms or not all(forms))


def fill(language: str, translations: dict) -> list:
    path = ROOT / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    for message in catalog:
        if not missing(message):
            continue
        if language == "en":
            message.string = message.id
        elif message.id in translations:
            message.string = translations[message.id]
        else:
            continue
        message.flags.discard("fuzzy")
    with path.open("wb") as handle:
        write_po(handle, catalog, width=120)
    return [message.id for message in catalog if missing(message)]


if __name__ == "__main__":
    danish = runpy.run_path(sys.argv[1])["DA"] if len(sys.argv) > 1 else {}
    for language, table in (("en", {}), ("da", danish)):
        print(language, "missing:", fill(language, table))
