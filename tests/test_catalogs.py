"""The en and da catalogs hold every operator-visible string of the code and templates."""
import os
import re

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tests.conftest import ROOT_DIR

METHODS = [("**.py", "python"), ("**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None}
PLACEHOLDER = re.compile(r"%\(\w+\)s")


def scanned_directory(path: str) -> bool:
    """Every folder but hidden ones and caches: templates/_macros holds strings too (Babel skips `_*` by default)."""
    name = os.path.basename(path)
    return not name.startswith(".") and name != "__pycache__"


def source_messages() -> set[str]:
    found: set[str] = set()
    for folder in ("backoffice", "templates"):
        for _filename, _lineno, message, _comments, _context in extract_from_dir(
            ROOT_DIR / folder, METHODS, keywords=KEYWORDS, directory_filter=scanned_directory
        ):
            found.update([message] if isinstance(message, str) else [m for m in message if m])
    return found


@pytest.mark.parametrize("language", ["en", "da"])
def test_catalog_is_complete(language):
    with open(ROOT_DIR / "backoffice" / "translations" / language / "LC_MESSAGES" / "messages.po", "rb") as handle:
        catalog = read_po(handle, locale=language)
    translated = {}
    for message in catalog:
        if not message.id or "fuzzy" in message.flags:
            continue
        # A plural message pairs its singular and plural ids with as many forms as the language has.
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        if forms and all(forms):
            translated.update({message_id: forms[min(index, len(forms) - 1)] for index, message_id in enumerate(ids)})
    missing = sorted(source_messages() - set(translated))
    assert not missing, f"untranslated in {language} (run `make messages` and translate): {missing}"
    for message_id, text in translated.items():
        assert sorted(PLACEHOLDER.findall(message_id)) == sorted(PLACEHOLDER.findall(text)), message_id
