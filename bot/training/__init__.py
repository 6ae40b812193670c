"""Training sets, one flow for every studio (portraits on mimpi, styles on Flair), each with its own rules."""

from bot.training.images import Prepared, as_jpeg, keep_format, parse_numbers
from bot.training.rules import Rules
from bot.training.store import REFERRER_SQL, AddResult, NewImage, SetImage, TrainingSet, TrainingSetStore, member_key

__all__ = [
    "REFERRER_SQL",
    "AddResult",
    "NewImage",
    "Prepared",
    "Rules",
    "SetImage",
    "TrainingSet",
    "TrainingSetStore",
    "as_jpeg",
    "keep_format",
    "member_key",
    "parse_numbers",
]
