"""Every studio switched on at once: the commands still fit Discord's rules (the emulator checks them at sync)."""

from __future__ import annotations

from tests.conftest import EaselFactory
from tests.emulator import DiscordEmulator


async def test_every_studio_on_at_once_registers_valid_commands(
    emulator: DiscordEmulator, easel_factory: EaselFactory
) -> None:
    await easel_factory(
        mimipanda_api_token="mp-key",
        mimpi_api_key="mimpi-key",
        imagine_api_key="vk-key",
        flair_api_key="flair-key",
        flair_base_url="http://127.0.0.1:9/flair",
    )
    names = {c["name"] for c in emulator.commands}
    expected = {"imagine", "upscale", "edit", "video", "coloring", "paint-by-numbers", "ai-filter", "portrait", "style"}
    assert expected <= names
    commands = {c["name"]: c for c in emulator.commands}
    studio = next(o for o in commands["upscale"]["options"] if o["name"] == "studio")
    assert {c["value"] for c in studio["choices"]} == {"imagine", "mimipanda", "local"}
    for command in emulator.commands:
        assert len(command.get("options", [])) <= 25, command["name"]
