"""WSGI entry point: `gunicorn wsgi:app`, and FLASK_APP for the flask command."""
from backoffice.config import create_app_or_exit

app = create_app_or_exit()
