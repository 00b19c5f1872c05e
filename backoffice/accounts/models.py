"""Product-side tables: tenants (accounts), users, logins and sessions.

The SaaS writes these (here the demo generator does); Backoffice only reads them.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.extensions import db

TENANT_STATES = ("active", "suspended")
SUSPENSION_REASONS = ("payment_failed", "customer_deleted")
USER_ROLES = ("owner", "admin", "member")
LOGIN_METHODS = ("one_time_password", "google")
LOGIN_OUTCOMES = ("succeeded", "failed", "pending")
REVOKED_REASONS = ("logged_out", "revoked", "replay_attack_detected", "switch_tenant")


def _one_of(column: str, values: tuple[str, ...], *, nullable: bool = False) -> str:
    """Return the SQL of a CHECK that keeps a text column within an enumeration."""
    listed = ", ".join(f"'{value}'" for value in values)
    return f"{column} IS NULL OR {column} IN ({listed})" if nullable else f"{column} IN ({listed})"


class Tenant(db.Model):
    """An account of the SaaS; soft-deleted, never removed."""

    __tablename__ = "tenants"
    __table_args__ = (
        sa.CheckConstraint(_one_of("state", TENANT_STATES), name="state"),
        sa.CheckConstraint(
            _one_of("suspension_reason", SUSPENSION_REASONS, nullable=True), name="suspension_reason"
        ),
        sa.CheckConstraint("country IS NULL OR country ~ '^[A-Z]{2}$'", name="country"),
        sa.Index(
            "ix_tenants_name_trgm", "name", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}
        ),
        # Cross-tenant lists leave soft-deleted tenants out, newest first.
        sa.Index(
            "ix_tenants_created_at_not_deleted", "created_at", postgresql_where=sa.text("deleted_at IS NULL")
        ),
        # … and find the few deleted ones' users by the list of their ids (a users search leaves them out).
        sa.Index("ix_tenants_deleted", "id", postgresql_where=sa.text("deleted_at IS NOT NULL")),
    )

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    modified_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    state: Mapped[str] = mapped_column(sa.Text, server_default="active")
    suspension_reason: Mapped[str | None] = mapped_column(sa.Text)
    suspended_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # Denormalized from the subscription projection; plans are catalog keys, so no CHECK.
    plan: Mapped[str | None] = mapped_column(sa.Text)
    country: Mapped[str | None] = mapped_column(sa.Text)
    logo: Mapped[str | None] = mapped_column(sa.Text)


class User(db.Model):
    """A membership of a person (identified by email) in one tenant."""

    __tablename__ = "users"
    __table_args__ = (
        sa.CheckConstraint(_one_of("role", USER_ROLES), name="role"),
        sa.Index(
            "ix_users_email_trgm", "email", postgresql_using="gin", postgresql_ops={"email": "gin_trgm_ops"}
        ),
        # One live membership per email and tenant; a deleted one may be re-created.
        sa.Index(
            "uq_users_tenant_id_email_not_deleted",
            "tenant_id",
            "email",
            unique=True,
            postgresql_where=sa.text("deleted_at IS NULL"),
        ),
        sa.Index(None, "tenant_id"),
        sa.Index(None, "last_seen_at"),
    )

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text, sa.ForeignKey("tenants.id"))
    email: Mapped[str] = mapped_column(sa.Text)
    first_name: Mapped[str | None] = mapped_column(sa.Text)
    last_name: Mapped[str | None] = mapped_column(sa.Text)
    title: Mapped[str | None] = mapped_column(sa.Text)
    role: Mapped[str] = mapped_column(sa.Text, server_default="member")
    email_confirmed: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    modified_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    last_seen_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    avatar: Mapped[str | None] = mapped_column(sa.Text)


# A person is all user rows sharing an email, matched case-insensitively.
sa.Index("ix_users_email_lower", sa.func.lower(User.email))
# The users search looks an address up by its start.
sa.Index("ix_users_email_lower_pattern", sa.func.lower(User.email).label("email_lower"),
         postgresql_ops={"email_lower": "text_pattern_ops"})

# The users list's keys as SQL (accounts.people sorts and searches by these very expressions): the display
# name as a lower-case key (the email when no name is known), and the role's rank. `{t}` is the table prefix.
NAME_KEY_SQL = ("lower(COALESCE(NULLIF(btrim((COALESCE({t}first_name, '') || ' ') || COALESCE({t}last_name, '')), ''),"
                " {t}email))")
ROLE_RANK_SQL = "array_position(ARRAY[" + ", ".join(f"'{role}'" for role in USER_ROLES) + "], {t}role)"
# Last seen as a sort key that puts the never-seen last: the earliest (descending) or latest (ascending) moment
# there is, in UTC. A plain column, so that the activity filters are ranges an index seeks to.
SEEN_KEY_SQL = "COALESCE(({t}last_seen_at AT TIME ZONE 'UTC'), '{never} 00:00:00'::timestamp without time zone)"
SEEN_DESC_SQL = SEEN_KEY_SQL.replace("{never}", "0001-01-01")
SEEN_ASC_SQL = SEEN_KEY_SQL.replace("{never}", "9999-12-31")
# (index, expressions) of the users list (migration 0009): each sort with its ties, read forwards or backwards;
# last seen twice, as the never-seen stay last both ways.
USER_LIST_ORDERS = (
    ("ix_users_list_name", [NAME_KEY_SQL, "lower(email)", "id"]),
    ("ix_users_list_email", ["lower(email)", "id"]),
    ("ix_users_list_role", [ROLE_RANK_SQL, NAME_KEY_SQL, "lower(email)", "id"]),
    ("ix_users_list_last_seen", [SEEN_ASC_SQL, "lower(email)", "id"]),
    ("ix_users_list_last_seen_desc", [SEEN_DESC_SQL, "lower(email)", "id"]),
    ("ix_users_list_created", ["created_at", "id"]),
)
for _name, _expressions in USER_LIST_ORDERS:
    sa.Index(_name, *(sa.text(e.format(t="")) for e in _expressions), _table=User.__table__,
             postgresql_where=sa.text("deleted_at IS NULL"))
# Search by "first last" (and by first or last name alone) in one trigram index.
sa.Index("ix_users_name_key_trgm", sa.literal_column(NAME_KEY_SQL.format(t="")).label("name_key"),
         _table=User.__table__, postgresql_using="gin", postgresql_ops={"name_key": "gin_trgm_ops"})


class Login(db.Model):
    """One sign-in attempt; user_id is null when the email matched no user."""

    __tablename__ = "logins"
    __table_args__ = (
        sa.CheckConstraint(_one_of("method", LOGIN_METHODS), name="method"),
        sa.CheckConstraint(_one_of("outcome", LOGIN_OUTCOMES), name="outcome"),
    )

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    user_id: Mapped[str | None] = mapped_column(sa.Text, sa.ForeignKey("users.id"))
    email: Mapped[str] = mapped_column(sa.Text)
    method: Mapped[str] = mapped_column(sa.Text)
    outcome: Mapped[str] = mapped_column(sa.Text)
    ip_address: Mapped[str | None] = mapped_column(sa.Text)
    user_agent: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())


# A person's sign-ins by email in any case, newest first (the keyset of their history).
sa.Index("ix_logins_email_lower_created_at", sa.func.lower(Login.email), Login.created_at.desc(), Login.id.desc())
sa.Index("ix_logins_user_id_created_at", Login.user_id, Login.created_at.desc())
# The dashboard's logins per day.
sa.Index("ix_logins_succeeded_created_at", Login.created_at, postgresql_where=sa.text("outcome = 'succeeded'"))


class LoginDaily(db.Model):
    """Completed sign-ins per UTC day, kept by triggers on logins (migration 0007): the dashboard's sign-ins chart."""

    __tablename__ = "login_daily"

    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    succeeded: Mapped[int] = mapped_column(sa.Integer, server_default="0")


class UserSeenDaily(db.Model):
    """Live users (of live accounts) by the UTC day they were last seen, kept by triggers on users and tenants
    (migration 0010): the active-users tile sums the period's days instead of counting the users."""

    __tablename__ = "user_seen_daily"

    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    users: Mapped[int] = mapped_column(sa.Integer, server_default="0")


class UserSession(db.Model):
    """A signed-in session of a user in one tenant; active while not revoked."""

    __tablename__ = "sessions"
    __table_args__ = (
        sa.CheckConstraint(_one_of("login_method", LOGIN_METHODS), name="login_method"),
        sa.CheckConstraint(_one_of("revoked_reason", REVOKED_REASONS, nullable=True), name="revoked_reason"),
        sa.Index(None, "user_id"),
        sa.Index("ix_sessions_tenant_id_active", "tenant_id", postgresql_where=sa.text("revoked_at IS NULL")),
        # The dashboard's active sessions: not revoked, active (or begun) within the last 24 hours.
        sa.Index("ix_sessions_active_at", sa.text("coalesce(last_active_at, created_at)"),
                 postgresql_include=["last_active_at", "created_at"], postgresql_where=sa.text("revoked_at IS NULL")),
    )

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.Text, sa.ForeignKey("users.id"))
    tenant_id: Mapped[str] = mapped_column(sa.Text, sa.ForeignKey("tenants.id"))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    last_active_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    login_method: Mapped[str] = mapped_column(sa.Text)
    ip_address: Mapped[str | None] = mapped_column(sa.Text)
    user_agent: Mapped[str | None] = mapped_column(sa.Text)
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(sa.Text)


class AccountIndex(db.Model):
    """The accounts list's read model: what it finds and orders accounts by, one row per tenant.

    Triggers on tenants and subscriptions write it (migration 0006); nothing else does. Indexes serve each
    sort of the list in both directions, each ending in name then id.
    """

    __tablename__ = "account_index"
    __table_args__ = (
        sa.Index("ix_account_index_name_key_trgm", "name_key", postgresql_using="gin",
                 postgresql_ops={"name_key": "gin_trgm_ops"}),
        # The ledger's trigger finds a subscription's row by it on every append.
        sa.Index("ix_account_index_subscription_id", "subscription_id"),
        # The plan mix and the accounts tile count live accounts per plan from the index alone.
        sa.Index("ix_account_index_plan", "plan", postgresql_where=sa.text("NOT deleted")),
    )

    tenant_id: Mapped[str] = mapped_column(sa.Text, sa.ForeignKey("tenants.id"), primary_key=True)
    subscription_id: Mapped[str | None] = mapped_column(sa.Text)
    name_key: Mapped[str] = mapped_column(sa.Text)
    plan: Mapped[str | None] = mapped_column(sa.Text)
    country: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    deleted: Mapped[bool] = mapped_column(sa.Boolean)
    # Position in the list's status order: active, downgrading, canceling, canceled, free.
    status_rank: Mapped[int] = mapped_column(sa.SmallInteger, server_default="4")
    mrr: Mapped[Decimal] = mapped_column(sa.Numeric(18, 2), server_default="0")
    currency: Mapped[str | None] = mapped_column(sa.Text)  # the subscription's billing currency (the currency filter)
    renewal_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    drift: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    # Unsynced = priced and never ledgered (the seed's banner): a priced subscription with no ledger row yet.
    priced: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    ledgered: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())


_LIVE = sa.text("NOT deleted")
for _name, _columns in (
    ("ix_account_index_name", ["name_key", "tenant_id"]),
    ("ix_account_index_mrr", ["mrr", "name_key", "tenant_id"]),
    ("ix_account_index_mrr_desc", [sa.text("mrr DESC"), "name_key", "tenant_id"]),
    ("ix_account_index_renewal", [sa.text("(renewal_at IS NULL)"), "renewal_at", "name_key", "tenant_id"]),
    ("ix_account_index_renewal_desc", [sa.text("(renewal_at IS NULL)"), sa.text("renewal_at DESC"), "name_key",
                                       "tenant_id"]),
    ("ix_account_index_status", ["status_rank", "name_key", "tenant_id"]),
    ("ix_account_index_status_desc", [sa.text("status_rank DESC"), "name_key", "tenant_id"]),
    ("ix_account_index_country", [sa.text("(country IS NULL)"), "country", "name_key", "tenant_id"]),
    ("ix_account_index_country_desc", [sa.text("(country IS NULL)"), sa.text("country DESC"), "name_key", "tenant_id"]),
    ("ix_account_index_created", ["created_at", "name_key", "tenant_id"]),
    ("ix_account_index_created_desc", [sa.text("created_at DESC"), "name_key", "tenant_id"]),
):
    sa.Index(_name, *(getattr(AccountIndex, c) if isinstance(c, str) else c for c in _columns), postgresql_where=_LIVE)
