"""Real user-agent strings of the browsers and devices operators see in login histories."""
from __future__ import annotations

# (label, weight, user agent). Labels say what a maintained parser must tell apart.
USER_AGENTS: tuple[tuple[str, int, str], ...] = (
    ("chrome-windows", 30, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                           "Chrome/131.0.0.0 Safari/537.36"),
    ("edge-windows", 10, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                         "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"),
    ("firefox-windows", 6, "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"),
    ("safari-macos", 16, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                         "Version/18.1 Safari/605.1.15"),
    ("chrome-macos", 12, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
                         "Chrome/131.0.0.0 Safari/537.36"),
    ("firefox-linux", 4, "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"),
    ("chrome-linux", 3, "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                        "Chrome/131.0.0.0 Safari/537.36"),
    # Chromium-based Opera: says Chrome, and OPR/ gives it away.
    ("opera-windows", 3, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                         "Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0"),
    ("safari-iphone", 9, "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
                         "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"),
    ("safari-ipad", 2, "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                       "Version/17.6 Mobile/15E148 Safari/604.1"),
    # Android is Linux too: a parser must not call this desktop Linux.
    ("chrome-android", 7, "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                          "Chrome/131.0.6778.81 Mobile Safari/537.36"),
    ("samsung-android", 2, "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
                           "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36"),
)

# What shows up in failed logins for addresses nobody has: a crawler probing the sign-in form.
BOT_USER_AGENT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
