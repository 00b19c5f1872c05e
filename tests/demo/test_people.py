"""The SaaS-side records of the demo: deterministic, consistent, and accepted by the real schema."""
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from ua_parser import parse

from backoffice.accounts.models import Login, Tenant
from backoffice.demo.people import PeopleGenerator
from backoffice.demo.user_agents import BOT_USER_AGENT, USER_AGENTS

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def generate(seed: int, tenants: int = 60):
    generator = PeopleGenerator(seed, NOW)
    return [generator.tenant(NOW - timedelta(days=700 * i / tenants)) for i in range(tenants)]


def test_same_seed_same_records_other_seed_other_records():
    assert generate(5) == generate(5)
    assert [r.tenant["name"] for r in generate(5)] != [r.tenant["name"] for r in generate(6)]


def test_every_record_belongs_to_its_tenant_and_user():
    for records in generate(11):
        tenant_id = records.tenant["id"]
        user_ids = {user["id"] for user in records.users}
        assert [u["role"] for u in records.users].count("owner") == 1
        assert all(user["tenant_id"] == tenant_id for user in records.users)
        assert all(login["user_id"] in user_ids | {None} for login in records.logins)
        assert all(s["user_id"] in user_ids and s["tenant_id"] == tenant_id for s in records.sessions)
        assert len({u["email"] for u in records.users}) == len(records.users)


def test_sessions_follow_sign_ins():
    for records in generate(12):
        by_user = Counter(s["user_id"] for s in records.sessions if s["revoked_at"] is None)
        assert all(count == 1 for count in by_user.values()), "at most one open session per user"
        for session in records.sessions:
            assert session["created_at"] <= session["last_active_at"] <= NOW
            if session["revoked_at"] is not None:
                assert session["revoked_reason"] in {"logged_out", "switch_tenant", "revoked", "replay_attack_detected"}
        succeeded = [lg for lg in records.logins if lg["outcome"] == "succeeded"]
        assert len(succeeded) == len(records.sessions)


def test_the_mix_has_what_operators_need_to_see():
    records = generate(13, tenants=200)
    users = [u for r in records for u in r.users]
    logins = [lg for r in records for lg in r.logins]
    assert {u["role"] for u in users} == {"owner", "admin", "member"}
    assert any(not u["email_confirmed"] for u in users) and any(u["deleted_at"] for u in users)
    assert any(u["first_name"] is None for u in users) and any(u["last_name"] is None for u in users)
    emails = Counter(u["email"] for u in users)
    assert any(count > 1 for count in emails.values()), "some people belong to several tenants"
    assert {lg["outcome"] for lg in logins} == {"succeeded", "failed", "pending"}
    assert {lg["method"] for lg in logins} == {"google", "one_time_password"}
    assert any(lg["user_id"] is None and lg["user_agent"] == BOT_USER_AGENT for lg in logins)
    assert len({r.tenant["country"] for r in records}) >= 6
    assert all(ip.startswith(("192.0.2.", "198.51.100.", "203.0.113.")) for ip in {lg["ip_address"] for lg in logins})


def test_user_agents_parse_as_what_they_are():
    parsed = {label: parse(agent) for label, _, agent in USER_AGENTS}
    assert parsed["opera-windows"].user_agent.family == "Opera"
    assert parsed["chrome-windows"].user_agent.family == "Chrome"
    assert parsed["chrome-android"].os.family == "Android"
    assert parsed["chrome-linux"].os.family == "Linux"
    assert parsed["safari-iphone"].os.family == "iOS" and parsed["safari-iphone"].device.family == "iPhone"
    assert parsed["edge-windows"].user_agent.family == "Edge"
    assert parse(BOT_USER_AGENT).device.family == "Spider"
    assert all(result.user_agent is not None for result in parsed.values())


def test_written_records_read_back_through_the_models(db_session, tmp_path):
    from backoffice.blobs import BlobStore
    from backoffice.demo.writer import write_records

    records = generate(15, tenants=10)
    counts = write_records(db_session, records, BlobStore(tmp_path))
    assert counts == {"tenants": 10, "users": sum(len(r.users) for r in records),
                      "logins": sum(len(r.logins) for r in records), "sessions": sum(len(r.sessions) for r in records)}
    tenant = db_session.get(Tenant, records[0].tenant["id"])
    assert tenant.name == records[0].tenant["name"] and tenant.created_at == records[0].tenant["created_at"]
    assert (tmp_path / tenant.logo).read_bytes().startswith(b"\x89PNG")
    assert db_session.scalar(select(func.count()).select_from(Login)) == counts["logins"]
