"""A local Discord API emulator (REST, gateway, CDN) for driving the real discord.py in tests.

    emu = DiscordEmulator(); await emu.start()
    # point the bot at emu.api_base / emu.gateway_url (tests.emulator.harness.running_bot does it for plain bots)
    ix = await emu.invoke("about", user=emu.add_member("alice"))
    assert (await ix.response())["type"] == 4
    await emu.stop()

Misuse a real client could not commit (unknown command or option, pressing a disabled button) raises
EmulatorUsageError in the test; bot mistakes get Discord's own error answers, also kept in emu.api_errors.
"""

from .emulator import DiscordEmulator
from .errors import EmulatorUsageError
from .interaction import Interaction
from .models import Attachment, Member, RecordedError, RecordedRequest

__all__ = [
    "Attachment",
    "DiscordEmulator",
    "EmulatorUsageError",
    "Interaction",
    "Member",
    "RecordedError",
    "RecordedRequest",
]
