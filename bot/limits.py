"""Every Discord limit that can bite, in one place (see shared/docs/image-bot-lessons.md)."""

from __future__ import annotations

FIRST_RESPONSE_DEADLINE_S = 3.0
INTERACTION_TOKEN_LIFETIME_S = 15 * 60
# Stop using a token a little before it dies: a followup that races the expiry is lost.
INTERACTION_TOKEN_SAFETY_S = 60
DEFAULT_ATTACHMENT_LIMIT = 10 * 1024 * 1024
REQUEST_SIZE_LIMIT = 25 * 1024 * 1024
FILES_PER_MESSAGE = 10
MESSAGE_CONTENT_LIMIT = 2000
EMBEDS_PER_MESSAGE = 10
EMBED_DESCRIPTION_LIMIT = 4096
EMBED_FIELD_VALUE_LIMIT = 1024
EMBED_TOTAL_LIMIT = 6000
CUSTOM_ID_LIMIT = 100
BUTTONS_PER_ROW = 5
ROWS_PER_MESSAGE = 5
CHOICES_PER_OPTION = 25
AUTOCOMPLETE_RESULTS = 25
PROGRESS_EDIT_INTERVAL_S = 5.0
DISCORD_HTTP_CONNECTIONS = 16  # connections to Discord's REST API kept open at once (see runtime.py)
