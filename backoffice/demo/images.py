"""Generated pictures: a logo per tenant and an avatar per user, as small PNGs."""
from __future__ import annotations

import hashlib
import io

from PIL import Image, ImageDraw, ImageFont

PALETTE = ("#0f766e", "#1d4ed8", "#7c3aed", "#b45309", "#be123c", "#15803d", "#334155", "#0e7490", "#a21caf")


def initials(*words: str | None) -> str:
    letters = [w.strip()[0] for w in words if w and w.strip()]
    return "".join(letters[:2]).upper() or "?"


def _colour(seed: str) -> str:
    return PALETTE[int(hashlib.sha256(seed.encode()).hexdigest(), 16) % len(PALETTE)]


def _png(text: str, colour: str, *, round_shape: bool, size: int = 96) -> bytes:
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if round_shape:
        draw.ellipse((0, 0, size - 1, size - 1), fill=colour)
    else:
        draw.rounded_rectangle((0, 0, size - 1, size - 1), radius=size // 5, fill=colour)
    font = ImageFont.load_default(size=size * 0.42)
    draw.text((size / 2, size / 2), text, fill="white", font=font, anchor="mm")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def logo_png(company: str) -> bytes:
    """Return a square logo with the company's initials."""
    return _png(initials(*company.split()[:2]), _colour(company), round_shape=False)


def avatar_png(first_name: str | None, last_name: str | None, email: str) -> bytes:
    """Return a round avatar with the person's initials (or the email's first letter)."""
    return _png(initials(first_name, last_name) if (first_name or last_name) else email[:1].upper(),
                _colour(email), round_shape=True)
