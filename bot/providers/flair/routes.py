"""Where each Flair operation lives: "METHOD /path/{placeholder}" templates a deployment can correct.

The seed names every operation but gives no URL (docs/providers.md §2): these defaults are a conventional
REST layout [inferred]. A deployment overrides any of them with the `flair_paths` setting (JSON), e.g.
`FLAIR_PATHS={"rename_model": "PUT /models/{model_id}/name"}`; unknown operations or placeholders are
refused when the client is built, not at the first request.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})

DEFAULT_ROUTES: Mapping[str, str] = {
    "create_model": "POST /models",
    "list_models": "GET /models",
    "get_model": "GET /models/{model_id}",
    "rename_model": "PATCH /models/{model_id}",
    "delete_model": "DELETE /models/{model_id}",
    "upload_data": "POST /models/{model_id}/data",
    "list_data": "GET /models/{model_id}/data",
    "get_data": "GET /models/{model_id}/data/{data_id}",
    "replace_data": "PUT /models/{model_id}/data/{data_id}",
    "delete_data": "DELETE /models/{model_id}/data/{data_id}",
    "start_training": "POST /models/{model_id}/trainings",
    "list_trainings": "GET /models/{model_id}/trainings",
    "get_training": "GET /models/{model_id}/trainings/{training_id}",
    "cancel_training": "POST /models/{model_id}/trainings/{training_id}/cancel",
    "delete_training": "DELETE /models/{model_id}/trainings/{training_id}",
    "create_prediction": "POST /predictions",
    "get_prediction": "GET /predictions/{prediction_id}",
    "delete_prediction": "DELETE /predictions/{prediction_id}",
}


def _placeholders(path: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(path) if name is not None}


@dataclass(frozen=True)
class Route:
    method: str
    path: str

    def format(self, **ids: str) -> str:
        # Ids are quoted whole: an id with a slash must not reach another resource.
        return self.path.format(**{k: quote(v, safe="") for k, v in ids.items()})


class Routes:
    def __init__(self, overrides: Mapping[str, str] | str | None = None) -> None:
        if isinstance(overrides, str):
            overrides = json.loads(overrides) if overrides.strip() else {}
            if not isinstance(overrides, dict):
                raise ValueError("flair_paths must be a JSON object of operation -> 'METHOD /path'")
        merged = {**DEFAULT_ROUTES, **(overrides or {})}
        self._routes: dict[str, Route] = {}
        for name, template in merged.items():
            if name not in DEFAULT_ROUTES:
                raise ValueError(f"flair_paths: unknown operation {name!r}")
            method, _, path = str(template).strip().partition(" ")
            method, path = method.upper(), path.strip()
            if method not in METHODS or not path:
                raise ValueError(f"flair_paths: {name} must look like 'POST /models', not {template!r}")
            try:
                wanted, given = _placeholders(DEFAULT_ROUTES[name].partition(" ")[2]), _placeholders(path)
            except ValueError as exc:
                raise ValueError(f"flair_paths: {name} has a malformed template {path!r}") from exc
            if given != wanted:
                names = ", ".join("{" + n + "}" for n in sorted(wanted)) or "no placeholders"
                raise ValueError(f"flair_paths: {name} must use exactly {names}")
            self._routes[name] = Route(method, path)

    def __getitem__(self, name: str) -> Route:
        return self._routes[name]
