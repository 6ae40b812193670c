"""Which adapter class serves which provider; only the providers with a key are built (and imported)."""

from __future__ import annotations

import importlib

import httpx

from bot.providers.base import Adapter
from bot.settings import Settings

ADAPTER_CLASSES = {
    "mimipanda": "bot.providers.mimipanda:MimiPandaAdapter",
    "mimpi": "bot.providers.mimpi:MimpiAdapter",
    "flair": "bot.providers.flair:FlairAdapter",
    "imagine": "bot.providers.imagine:ImagineAdapter",
    "local": "bot.providers.local.adapter:LocalAdapter",
}


def build_adapters(settings: Settings, client: httpx.AsyncClient) -> dict[str, Adapter]:
    adapters: dict[str, Adapter] = {}
    for name, enabled in settings.provider_enabled().items():
        if not enabled:
            continue
        module_name, _, class_name = ADAPTER_CLASSES[name].partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue  # a provider whose adapter is not written yet stays off
        adapter_class: type[Adapter] = getattr(module, class_name)
        adapters[name] = adapter_class.from_settings(settings, client)
    return adapters
