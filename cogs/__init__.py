"""Feature extensions. Each entry: the module, and the provider it needs (None: always on).

A provider without its API key is off, and the extensions that need it are not loaded, so their commands
are never registered with Discord.
"""

from __future__ import annotations

EXTENSIONS: list[tuple[str, str | None]] = [
    ("cogs.about", None),
    ("cogs.jobs", None),
    ("cogs.quota", None),
    ("cogs.quota_admin", None),
    ("cogs.owner", None),
    ("cogs.help", None),
    ("cogs.rules_admin", None),
    ("cogs.prompt_log", None),
    ("cogs.retention", None),
    ("cogs.mimipanda", "mimipanda"),
    ("cogs.create", None),  # /imagine /upscale /edit /video: builds only what the enabled studios can do
    ("cogs.pictures", None),  # /coloring /paint-by-numbers /ai-filter: Mimi Panda or Easel's own studio
    ("cogs.studio_admin", None),
    ("cogs.portraits", "mimpi"),
    ("cogs.styles", "flair"),
]
