"""The WSGI entry point: ``gunicorn -c python:service.gunicorn_conf wsgi:app``."""

from config.settings import get_settings
from service.app import create_app
from service.logs import configure_logging

configure_logging(get_settings().log_format, get_settings().log_level)
app = create_app()
