"""Locale selection for Flask-Babel: the operator's choice, else their browser's languages."""
from pathlib import Path

from flask import Flask, current_app, request
from flask_login import current_user

from backoffice.extensions import babel

TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"


def select_locale() -> str:
    """Pick the operator's stored language, else the best match of Accept-Language."""
    languages = current_app.config["LANGUAGES"]
    if current_user and current_user.is_authenticated:
        chosen = current_user.preferences.get("locale")
        if chosen in languages:
            return chosen
    return request.accept_languages.best_match(languages) or current_app.config["BABEL_DEFAULT_LOCALE"]


def init_app(app: Flask) -> None:
    """Bind Flask-Babel with our catalogs and selector."""
    babel.init_app(app, locale_selector=select_locale, default_translation_directories=str(TRANSLATIONS))
