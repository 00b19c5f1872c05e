"""Production's WSGI entry point: `gunicorn wsgi:app`, and FLASK_APP for the Procfile's release step.

Settings come from the environment alone: without DATABASE_URL or SECRET_KEY the process stops with one line.
The development defaults (an embedded PostgreSQL, a key kept under instance/) belong to backoffice/dev.py.
"""
from backoffice.config import create_app_or_exit

# Gunicorn stops on a worker that exits with 3 ("failed to boot") but respawns one that exits otherwise, forever.
GUNICORN_BOOT_ERROR = 3

app = create_app_or_exit(exit_status=GUNICORN_BOOT_ERROR)
