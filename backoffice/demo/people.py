"""The SaaS's own records around each account: tenants, users, logins and sessions.

Everything is a deterministic function of the seed, so a demo or a benchmark can be rebuilt exactly.
Rows are plain dicts keyed by column name, ready for a bulk INSERT.
"""
from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from backoffice.demo.names import COMPANY_FIRST, COMPANY_SECOND, COUNTRIES, TITLES
from backoffice.demo.user_agents import BOT_USER_AGENT, USER_AGENTS

Row = dict[str, Any]

# How often a user signs in again (days between sign-ins); sessions last, so sign-ins are not visits.
ACTIVITY = {"frequent": (3, 10), "regular": (10, 30), "rare": (30, 90)}
ACTIVITY_WEIGHTS = {"frequent": 35, "regular": 45, "rare": 20}
REVOCATIONS = (("logged_out", 80), ("switch_tenant", 10), ("revoked", 9), ("replay_attack_detected", 1))


@dataclass
class TenantRecords:
    """One account and the people who use it."""

    tenant: Row
    users: list[Row] = field(default_factory=list)
    logins: list[Row] = field(default_factory=list)
    sessions: list[Row] = field(default_factory=list)


@dataclass(frozen=True)
class PeopleMix:
    """The proportions the generator draws from; defaults look like a B2B SaaS."""

    unconfirmed_share: float = 0.08
    deleted_user_share: float = 0.05
    shared_person_share: float = 0.04
    failed_login_share: float = 0.06
    pending_login_share: float = 0.02
    google_share: float = 0.35
    max_members: int = 40


class PeopleGenerator:
    """Make tenants, users, logins and sessions from one random stream."""

    def __init__(self, seed: int, now: datetime, mix: PeopleMix | None = None):
        self.rng = random.Random(seed)
        self.now = now
        self.mix = mix or PeopleMix()
        # People who work for several customers (consultants, accountants): one email, several tenants.
        self.shared_people: list[tuple[str, str, str]] = []
        self.countries = list(COUNTRIES)
        self.country_weights = [COUNTRIES[c][0] for c in self.countries]
        self.agent_weights = [weight for _, weight, _ in USER_AGENTS]

    def token(self, length: int = 16) -> str:
        return "".join(self.rng.choice("0123456789abcdefghijklmnopqrstuvwxyz") for _ in range(length))

    def country(self) -> str:
        return self.rng.choices(self.countries, self.country_weights)[0]

    def company_name(self, country: str) -> str:
        suffix = COUNTRIES[country][1]
        return f"{self.rng.choice(COMPANY_FIRST)} {self.rng.choice(COMPANY_SECOND)} {suffix}"

    def tenant(self, created_at: datetime, *, country: str | None = None, deleted_at: datetime | None = None,
               logo: str | None = None) -> TenantRecords:
        """Make one tenant created at `created_at` with its users and their history up to now."""
        country = country or self.country()
        name = self.company_name(country)
        tenant = {
            "id": f"ten_{self.token()}",
            "name": name,
            "created_at": created_at,
            "modified_at": None,
            "deleted_at": deleted_at,
            "state": "active",
            "suspension_reason": None,
            "suspended_at": None,
            "plan": None,
            "country": country,
            "logo": logo,
        }
        records = TenantRecords(tenant)
        domain = _domain(name)
        end = deleted_at or self.now
        for index, role in enumerate(self._roles()):
            joined = created_at if index == 0 else _between(self.rng, created_at, end)
            self._add_user(records, country, domain, role, joined, end)
        self._add_probing_logins(records, domain, created_at, end)
        return records

    def _roles(self) -> list[str]:
        # Most accounts are a handful of people, a few are large teams.
        members = min(self.mix.max_members, int(self.rng.lognormvariate(1.2, 0.8)))
        admins = self.rng.choice((0, 0, 1, 1, 2))
        return ["owner", *(["admin"] * admins), *(["member"] * max(0, members))]

    def _person(self, country: str, domain: str) -> tuple[str, str | None, str | None]:
        if self.shared_people and self.rng.random() < self.mix.shared_person_share:
            return self.rng.choice(self.shared_people)
        first, last = self.rng.choice(COUNTRIES[country][3]), self.rng.choice(COUNTRIES[country][4])
        local = f"{_ascii(first)}.{_ascii(last)}".replace(" ", "")
        email = f"{local}{self.rng.randint(1, 99) if self.rng.random() < 0.3 else ''}@{domain}"
        # Some people never filled in their names; the UI must cope with one or both missing.
        shape = self.rng.random()
        person = (email, None if shape < 0.03 else first, None if 0.03 <= shape < 0.06 else last)
        if self.rng.random() < 0.05:
            self.shared_people.append(person)
        return person

    def _add_user(self, records: TenantRecords, country: str, domain: str, role: str, joined: datetime,
                  end: datetime) -> None:
        email, first, last = self._person(country, domain)
        if any(user["email"] == email for user in records.users):
            return  # the same person twice in one tenant is not a membership
        confirmed = role == "owner" or self.rng.random() >= self.mix.unconfirmed_share
        deleted_at = None
        if role != "owner" and self.rng.random() < self.mix.deleted_user_share:
            deleted_at = _between(self.rng, joined, end)
        user = {
            "id": f"usr_{self.token()}",
            "tenant_id": records.tenant["id"],
            "email": email,
            "first_name": first,
            "last_name": last,
            "title": self.rng.choice(TITLES),
            "role": role,
            "email_confirmed": confirmed,
            "created_at": joined,
            "modified_at": None,
            "last_seen_at": None,
            "deleted_at": deleted_at,
            "avatar": None,
        }
        records.users.append(user)
        if confirmed:
            self._add_history(records, user, min(end, deleted_at or end))

    def _add_history(self, records: TenantRecords, user: Row, until: datetime) -> None:
        """Sign-ins from the user's devices, each opening a session that a later sign-in ends."""
        level = self.rng.choices(list(ACTIVITY), list(ACTIVITY_WEIGHTS.values()))[0]
        low, high = ACTIVITY[level]
        devices = self.rng.choices(USER_AGENTS, self.agent_weights, k=self.rng.choice((1, 1, 2)))
        ip = _documentation_ip(self.rng)
        at = user["created_at"] + timedelta(minutes=self.rng.randint(2, 240))
        previous_session: Row | None = None
        while at < until:
            agent = self.rng.choice(devices)[2]
            method = "google" if self.rng.random() < self.mix.google_share else "one_time_password"
            outcome = self._outcome()
            records.logins.append({
                "id": f"lgn_{self.token()}", "user_id": user["id"], "email": user["email"], "method": method,
                "outcome": outcome, "ip_address": ip, "user_agent": agent, "created_at": at,
            })
            if outcome == "succeeded":
                if previous_session is not None:
                    self._end_session(previous_session, at)
                previous_session = {
                    "id": f"ses_{self.token()}", "user_id": user["id"], "tenant_id": user["tenant_id"],
                    "created_at": at, "last_active_at": at, "login_method": method, "ip_address": ip,
                    "user_agent": agent, "revoked_at": None, "revoked_reason": None,
                }
                records.sessions.append(previous_session)
                user["last_seen_at"] = at
            at += timedelta(days=self.rng.uniform(low, high), minutes=self.rng.randint(0, 600))
        if previous_session is not None:
            self._settle_last_session(previous_session, user, until)

    def _outcome(self) -> str:
        draw = self.rng.random()
        if draw < self.mix.failed_login_share:
            return "failed"
        if draw < self.mix.failed_login_share + self.mix.pending_login_share:
            return "pending"
        return "succeeded"

    def _end_session(self, session: Row, at: datetime) -> None:
        reasons, weights = zip(*REVOCATIONS, strict=True)
        session["last_active_at"] = _between(self.rng, session["created_at"], at)
        session["revoked_at"] = at
        session["revoked_reason"] = self.rng.choices(reasons, weights)[0]

    def _settle_last_session(self, session: Row, user: Row, until: datetime) -> None:
        """Leave the newest session active (used lately) or ended, as the user's activity implies."""
        if until < self.now:
            self._end_session(session, until)
            return
        seen = min(self.now, session["created_at"] + timedelta(days=self.rng.uniform(0, 20)))
        session["last_active_at"] = seen
        user["last_seen_at"] = seen

    def _add_probing_logins(self, records: TenantRecords, domain: str, start: datetime, end: datetime) -> None:
        """Failed sign-ins for addresses no user has: what a crawler leaves behind."""
        for _ in range(self.rng.choice((0, 0, 0, 1, 2))):
            records.logins.append({
                "id": f"lgn_{self.token()}", "user_id": None, "email": f"admin@{domain}",
                "method": "one_time_password", "outcome": "failed", "ip_address": _documentation_ip(self.rng),
                "user_agent": BOT_USER_AGENT, "created_at": _between(self.rng, start, end),
            })


def _between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    if end <= start:
        return start
    return start + timedelta(seconds=rng.uniform(0, (end - start).total_seconds()))


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.replace("ø", "o").replace("æ", "ae").replace("å", "aa"))
    return "".join(c for c in folded if c.isascii()).lower()


def _domain(company: str) -> str:
    words = _ascii(company).replace(".", "").split()
    return f"{words[0]}{words[1]}.example"


def _documentation_ip(rng: random.Random) -> str:
    """Return an address from the ranges reserved for documentation (RFC 5737): never a real host."""
    network = rng.choice(("192.0.2", "198.51.100", "203.0.113"))
    return f"{network}.{rng.randint(1, 254)}"
