"""The flask commands operators and the release step run."""


def test_db_check_finds_no_drift_between_models_and_migrations(app):
    result = app.test_cli_runner().invoke(args=["db", "check"])
    # Alembic's check exits non-zero with the list of differences when models and migrations disagree.
    assert result.exit_code == 0, result.output


def test_ready_prints_each_check(app):
    result = app.test_cli_runner().invoke(args=["ready"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "database: ok", "migrations: at head", "redis: not configured: jobs run in-process"]
