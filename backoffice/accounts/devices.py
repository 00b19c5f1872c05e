"""What device and browser a login or session came from, read from its user agent by ua-parser.

ua-parser (uap-core's maintained regexes) tells Chromium-based Opera and Edge from Chrome by their own
tokens, and Android from desktop Linux; this module only turns its answer into what a table shows.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ua_parser import parse

DEVICE_KINDS = ("desktop", "phone", "tablet", "bot", "unknown")
DESKTOP_SYSTEMS = frozenset({"Windows", "Mac OS X", "macOS", "Linux", "Ubuntu", "Debian", "Fedora", "Chrome OS",
                             "ChromeOS", "FreeBSD", "OpenBSD", "NetBSD", "Solaris"})
PHONE_SYSTEMS = frozenset({"iOS", "Android", "Windows Phone", "KaiOS", "BlackBerry OS"})


@dataclass(frozen=True)
class Device:
    """A user agent as people name it: browser and version, operating system and version, kind of device."""

    browser: str | None
    os: str | None
    kind: str


def _version(*parts: str | None) -> str:
    """The leading known parts of a version, joined by dots ("14", "10.15.7")."""
    known = []
    for part in parts:
        if not part:
            break
        known.append(part)
    return ".".join(known)


def _named(family: str | None, version: str) -> str | None:
    if not family or family == "Other":
        return None
    return f"{family} {version}" if version else family


def _kind(user_agent: str, os_family: str | None, device_family: str | None, device_brand: str | None) -> str:
    if device_family == "Spider":
        return "bot"
    if device_family == "iPad" or "Tablet" in (device_brand or ""):
        return "tablet"
    if os_family == "Android" and "Mobile" not in user_agent:
        return "tablet"  # Android phones' browsers say "Mobile"; tablets' do not
    if os_family in PHONE_SYSTEMS:
        return "phone"
    if os_family in DESKTOP_SYSTEMS:
        return "desktop"
    return "unknown"


@lru_cache(maxsize=4096)
def parse_device(user_agent: str | None) -> Device:
    """Return the device of a user agent string; an empty or unreadable one is an unknown device."""
    text = (user_agent or "").strip()
    if not text:
        return Device(None, None, "unknown")
    result = parse(text)
    browser = result.user_agent
    system = result.os
    device = result.device
    return Device(
        browser=_named(browser.family, _version(browser.major)) if browser else None,
        os=_named(system.family, _version(system.major, system.minor, system.patch)) if system else None,
        kind=_kind(text, system.family if system else None, device.family if device else None,
                   device.brand if device else None),
    )
