"""gunicorn reads this file from the working directory, so a plain ``gunicorn wsgi:app`` gets Docket's settings."""

from service.gunicorn_conf import *  # noqa: F403 - timeouts, logger class, multiprocess clean-up
