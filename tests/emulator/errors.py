"""Discord's JSON error answers, raised inside route handlers and rendered by the server middleware."""

from __future__ import annotations

from typing import Any


class EmulatorUsageError(Exception):
    """The test asked for something Discord's client would never send (unknown command, missing option...)."""


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def field_error(path: list[str | int], code: str, message: str) -> dict[str, Any]:
    """Nest `{"_errors": [...]}` under a path, the shape Discord uses for 50035."""
    node: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(path):
        node = {str(key): node}
    return node


def invalid_form_body(path: list[str | int], code: str, message: str) -> ApiError:
    return ApiError(400, 50035, "Invalid Form Body", field_error(path, code, message))


def unauthorized() -> ApiError:
    return ApiError(401, 0, "401: Unauthorized")


def missing_permissions() -> ApiError:
    return ApiError(403, 50013, "Missing Permissions")


def cannot_dm() -> ApiError:
    return ApiError(403, 50007, "Cannot send messages to this user")


def cannot_edit_others() -> ApiError:
    return ApiError(403, 50005, "Cannot edit a message authored by another user")


def unknown_channel() -> ApiError:
    return ApiError(404, 10003, "Unknown Channel")


def unknown_guild() -> ApiError:
    return ApiError(404, 10004, "Unknown Guild")


def unknown_member() -> ApiError:
    return ApiError(404, 10007, "Unknown Member")


def unknown_message() -> ApiError:
    return ApiError(404, 10008, "Unknown Message")


def unknown_user() -> ApiError:
    return ApiError(404, 10013, "Unknown User")


def unknown_webhook() -> ApiError:
    return ApiError(404, 10015, "Unknown Webhook")


def unknown_application() -> ApiError:
    return ApiError(404, 10002, "Unknown Application")


def unknown_interaction() -> ApiError:
    return ApiError(404, 10062, "Unknown interaction")


def already_acknowledged() -> ApiError:
    return ApiError(400, 40060, "Interaction has already been acknowledged.")


def invalid_webhook_token() -> ApiError:
    return ApiError(401, 50027, "Invalid Webhook Token")


def entity_too_large() -> ApiError:
    return ApiError(413, 40005, "Request entity too large")


def empty_message() -> ApiError:
    return ApiError(400, 50006, "Cannot send an empty message")


def no_route(method: str, path: str) -> ApiError:
    return ApiError(404, 0, f"emulator: no route {method} {path}")
