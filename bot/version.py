from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("easel")
except PackageNotFoundError:  # running from a source tree that was not installed
    VERSION = "0.0.0+source"

PROJECT_URL = "https://github.com/easel-bot/easel"
