"""Content rules owned by each server's admins: blocked words and patterns, an NSFW policy, features on or
off per server and channel. `ContentCheck` applies them to every new job (a job-engine admission check)."""

from bot.content.admission import ContentCheck, is_age_restricted
from bot.content.features import FEATURE_GROUPS, FeatureGroup, group_of, group_title
from bot.content.matching import Rule, first_match, normalise, prompt_texts
from bot.content.store import SERVER, ContentStore, GuildRules, Switch

__all__ = [
    "FEATURE_GROUPS",
    "SERVER",
    "ContentCheck",
    "ContentStore",
    "FeatureGroup",
    "GuildRules",
    "Rule",
    "Switch",
    "first_match",
    "group_of",
    "group_title",
    "is_age_restricted",
    "normalise",
    "prompt_texts",
]
