"""Guardsite's settings plus Django's query log, to count SQL per connect (bench only)."""

import os

from guardsite.settings import *  # noqa: F403
from guardsite.settings import LOGGING

DEBUG = True  # Django logs each SQL statement only when DEBUG is on
LOGGING["handlers"]["queries"] = {
    "class": "logging.FileHandler",
    "filename": os.environ["GUARDSITE_QUERY_LOG"],
    "formatter": "plain",
}
LOGGING["loggers"]["django.db.backends"] = {
    "handlers": ["queries"],
    "level": "DEBUG",
    "propagate": False,
}
