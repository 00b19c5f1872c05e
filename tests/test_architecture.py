"""The plan the code keeps (STYLE, "Layout"; issue 17): which part may import which, read from the imports themselves.

Each rule names the modules it covers and the `backoffice` modules they must not import; a forbidden import fails
with its file and line. Imports inside functions count as much as those at the top.
"""
from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in a file, `from x import y` counted as x.y too."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def module_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def files(*packages: str) -> list[Path]:
    found: list[Path] = []
    for package in packages:
        target = ROOT / package.replace(".", "/")
        found += sorted(target.rglob("*.py")) if target.is_dir() else [target.with_suffix(".py")]
    return found


def within(module: str, *prefixes: str) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def breaks(covered: list[Path], forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    """Each import of a forbidden module (unless allowed), as `file:line module`."""
    return [f"{shown(path)}:{line} {name}" for path in covered for line, name in imports(path)
            if within(name, *forbidden) and not within(name, *allowed)]


def shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


BACKOFFICE = ("backoffice",)
DOMAIN = ("backoffice.billing", "backoffice.accounts", "backoffice.operators")
READ = ("backoffice.read",)
JOB_ENTRY_POINTS = ("backoffice.billing.replay.tasks", "backoffice.billing.reconcile.tasks")
AUDIT_WRITER = ("backoffice.operators.audit",)
QUEUEING = ("backoffice.jobs.enqueue", "backoffice.jobs.enqueue_once", "backoffice.jobs.enqueue_in")

RULES = {
    # The sandbox is Stripe: it knows nothing of Backoffice (DESIGN §7).
    "the sandbox imports nothing of Backoffice": (
        files("backoffice.stripe_sandbox"), BACKOFFICE, ("backoffice.stripe_sandbox",)),
    # The gateway is the lowest layer that talks to Stripe: it leans on no domain, only on the shared helpers.
    "the gateway leans on no domain": (
        files("backoffice.stripe_gateway"), BACKOFFICE, ("backoffice.stripe_gateway", "backoffice.money")),
    # Production code never reaches the sandbox; the demo and the CLI that serves it do.
    "only the demo and the CLI use the sandbox": (
        [path for path in files("backoffice") if not within(module_of(path), "backoffice.stripe_sandbox",
                                                            "backoffice.demo", "backoffice.cli")],
        ("backoffice.stripe_sandbox",), ()),
    # The domain and the read layer are plain Python: they never import the web layer nor a request's globals
    # (STYLE, principle 1).
    "the domain and the read layer never import the web layer": (
        files(*DOMAIN, *READ), ("backoffice.web", "flask.request", "flask.session", "flask.g"), ()),
    # Billing reads accounts.models and the replay writes tenants.plan/state: accounts reading billing back was a
    # package cycle. The pages that show both (the account overview) read them from the read layer.
    "accounts imports nothing of billing": (files("backoffice.accounts"), ("backoffice.billing",), ()),
    # A view parses, calls one operation and renders: it never calls Stripe, queues a job or writes the audit log
    # itself, so an audited action cannot be composed (or half-composed) in a view.
    "the web acts only through the domain's operations": (
        files("backoffice.web"), ("backoffice.stripe_gateway", *JOB_ENTRY_POINTS, *AUDIT_WRITER, *QUEUEING), ()),
    # The read layer sits above the domains to serve pages: a domain that read through it would lean on every other.
    "only the web, the CLI and the demo import the read layer": (
        [path for path in files("backoffice") if not within(module_of(path), *READ, "backoffice.web", "backoffice.cli",
                                                            "backoffice.demo")],
        READ, ()),
    # The read layer only reads: it runs no operation, writes no audit entry and queues no job.
    "the read layer writes nothing": (
        files(*READ), ("backoffice.billing.operations", "backoffice.operators.operations", "backoffice.jobs",
                       *JOB_ENTRY_POINTS, *AUDIT_WRITER), ()),
    # A read model is a table and the SQL that keeps it: it reads the tables it derives from, nothing above them.
    "the read models lean only on the tables they derive from": (
        files("backoffice.read_models"),
        ("backoffice.web", *READ, "backoffice.stripe_gateway", "backoffice.jobs", "backoffice.billing.operations",
         "backoffice.billing.replay", "backoffice.billing.reconcile", "backoffice.operators", "backoffice.demo"), ()),
    # The database keeps the read models by itself (triggers); Python touches them only to check or rebuild one,
    # from the commands.
    "only the commands import the read models": (
        [path for path in files("backoffice") if not within(module_of(path), "backoffice.read_models",
                                                            "backoffice.cli", "backoffice.billing.commands")],
        ("backoffice.read_models",), ()),
    # The worker and scheduler processes run jobs; they serve no page, so they lean on no view nor page read.
    "the worker processes import no web layer nor read layer": (
        files("backoffice.workers"), ("backoffice.web", *READ), ()),
    # A migration creates what it says: it reads no live code, so editing the code never rewrites old history.
    "migrations import nothing of Backoffice": (files("migrations"), BACKOFFICE, ()),
    # The CLI registers the demo's commands; the demo never reaches back into the CLI (no loop).
    "the demo never imports the CLI": (files("backoffice.demo"), ("backoffice.cli",), ()),
    # The money helpers sit below every layer that handles amounts.
    "money imports nothing of Backoffice": (files("backoffice.money"), BACKOFFICE, ()),
    # The ledger's vocabulary is the bottom of billing: every layer may name it, it names none.
    "the vocabulary imports nothing of Backoffice": (files("backoffice.billing.ledger.vocabulary"), BACKOFFICE, ()),
}


@pytest.mark.parametrize("rule", RULES)
def test_the_plan_holds(rule):
    covered, forbidden, allowed = RULES[rule]
    assert covered, f"{rule}: the rule covers no file (a package moved?)"
    assert breaks(covered, forbidden, allowed) == [], rule


def test_a_forbidden_import_is_caught(tmp_path):
    """The check fails on a break (the same check as above, on a file that breaks the gateway's rule)."""
    module = tmp_path / "results.py"
    module.write_text("from backoffice.stripe_gateway import errors\n\ndef f():\n"
                      "    from backoffice.billing.ledger.pricing import cents\n")
    assert breaks([module], BACKOFFICE, ("backoffice.stripe_gateway", "backoffice.money")) == [
        f"{module}:4 backoffice.billing.ledger.pricing", f"{module}:4 backoffice.billing.ledger.pricing.cents"]
