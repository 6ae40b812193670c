"""Request bodies as discord.py sends them (JSON, or multipart payload_json + files[n]) and JSON answers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from .errors import ApiError, invalid_form_body

JSON_HEADERS = {"Content-Type": "application/json"}  # exact: discord.py compares the header verbatim


@dataclass
class UploadedFile:
    field: str  # "files[0]"
    filename: str
    data: bytes

    @property
    def index(self) -> int:
        return int(self.field[len("files[") : -1])


@dataclass
class Body:
    json: Any = None
    files: list[UploadedFile] = field(default_factory=list)


BODY: web.RequestKey[Body] = web.RequestKey("emulator_body", Body)  # set by the server middleware


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(data).encode(), headers=JSON_HEADERS)


def no_content() -> web.Response:
    return web.Response(status=204)


async def read_body(request: web.Request) -> Body:
    if not request.body_exists:
        return Body()
    if request.content_type.startswith("multipart/"):
        return await _read_multipart(request)
    raw = await request.read()
    if not raw:
        return Body()
    try:
        return Body(json=json.loads(raw))
    except ValueError as exc:
        raise ApiError(400, 50109, "The request body contains invalid JSON.") from exc


async def _read_multipart(request: web.Request) -> Body:
    body = Body()
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader):
            continue  # nested multipart: discord.py never sends it
        name = part.name or ""
        data = await part.read()
        if name == "payload_json":
            body.json = json.loads(data)
        elif name.startswith("files[") and name.endswith("]"):
            body.files.append(UploadedFile(name, part.filename or "unknown", bytes(data)))
        else:
            raise ApiError(400, 50035, f"Invalid Form Body: unexpected multipart field {name!r}")
    return body


def snowflake(request: web.Request, key: str) -> int:
    """A path id as an int, answering like Discord when it is not a snowflake."""
    value = request.match_info[key]
    if not value.isdigit():
        raise invalid_form_body([key], "NUMBER_TYPE_COERCE", f'Value "{value}" is not snowflake.')
    return int(value)
