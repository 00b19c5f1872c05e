"""Devices from user agents (ua-parser) and how people are named: no database, no Flask."""
from __future__ import annotations

import pytest

from backoffice.accounts.devices import Device, parse_device
from backoffice.accounts.names import display_name, initials
from backoffice.demo.user_agents import BOT_USER_AGENT, USER_AGENTS

AGENTS = {label: agent for label, _, agent in USER_AGENTS}


@pytest.mark.parametrize("agent, expected", [
    (AGENTS["chrome-windows"], Device("Chrome 131", "Windows 10", "desktop")),
    # Chromium-based Opera says Chrome too: OPR/ gives it away.
    (AGENTS["opera-windows"], Device("Opera 115", "Windows 10", "desktop")),
    (AGENTS["edge-windows"], Device("Edge 131", "Windows 10", "desktop")),
    (AGENTS["firefox-windows"], Device("Firefox 133", "Windows 10", "desktop")),
    (AGENTS["safari-macos"], Device("Safari 18", "Mac OS X 10.15.7", "desktop")),
    (AGENTS["safari-iphone"], Device("Mobile Safari 18", "iOS 18.1", "phone")),
    (AGENTS["safari-ipad"], Device("Mobile Safari 17", "iOS 17.6", "tablet")),
    # Android is Linux too, and a phone.
    (AGENTS["chrome-android"], Device("Chrome Mobile 131", "Android 14", "phone")),
    (AGENTS["samsung-android"], Device("Samsung Internet 26", "Android 14", "phone")),
    (AGENTS["chrome-linux"], Device("Chrome 131", "Linux", "desktop")),
    (AGENTS["firefox-linux"], Device("Firefox 133", "Ubuntu", "desktop")),
    ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
     Device("Chrome 120", "Android 13", "tablet")),
    (BOT_USER_AGENT, Device("Googlebot 2", None, "bot")),
    ("", Device(None, None, "unknown")),
    (None, Device(None, None, "unknown")),
    ("   ", Device(None, None, "unknown")),
    ("not a browser", Device(None, None, "unknown")),
])
def test_devices(agent, expected):
    assert parse_device(agent) == expected


@pytest.mark.parametrize("first, last, email, shown, letters", [
    ("Ann", "Lee", "ann@x.example", "Ann Lee", "AL"),  # both
    ("Ann", None, "ann@x.example", "Ann", "A"),  # only the first
    (None, "Lee", "lee@x.example", "Lee", "L"),  # only the last
    (None, None, "zed@x.example", "zed@x.example", "Z"),  # neither: the email
    ("  ", "", "q@x.example", "q@x.example", "Q"),  # blank names count as none
    (" Ann ", " Lee", "a@x.example", "Ann Lee", "AL"),
])
def test_display_name_rules(first, last, email, shown, letters):
    assert (display_name(first, last, email), initials(first, last, email)) == (shown, letters)
