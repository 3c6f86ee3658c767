"""Local development: the embedded default of `make run`."""

from config.env import env_bool

from .base import *

DEBUG = env_bool("DJANGO_DEBUG", True)
