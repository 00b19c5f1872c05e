"""How a person is named on every surface (the seed's userDisplay rules), from whatever names they gave."""
from __future__ import annotations


def _parts(first_name: str | None, last_name: str | None) -> list[str]:
    return [part.strip() for part in (first_name, last_name) if part and part.strip()]


def display_name(first_name: str | None, last_name: str | None, email: str) -> str:
    """"First Last"; only the first or only the last name alone; the email when neither is known."""
    return " ".join(_parts(first_name, last_name)) or email


def initials(first_name: str | None, last_name: str | None, email: str) -> str:
    """The avatar's fallback letters: the names' initials, else the email's first letter."""
    return ("".join(part[0] for part in _parts(first_name, last_name)) or email[:1]).upper()


class Named:
    """A row with first_name, last_name and email gets display_name and initials."""

    first_name: str | None
    last_name: str | None
    email: str

    @property
    def display_name(self) -> str:
        return display_name(self.first_name, self.last_name, self.email)

    @property
    def initials(self) -> str:
        return initials(self.first_name, self.last_name, self.email)
