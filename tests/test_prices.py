"""Prices shown where money is spent: the queued message, buttons' labels, confirmation, who pays."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import EaselFactory
from tests.emulator import DiscordEmulator
from tests.fakes.studio import FakeStudio
from tests.test_jobs import run_job, start


@pytest.fixture
async def studio() -> Any:
    fake = await FakeStudio().start()
    yield fake
    await fake.stop()


def buttons(message: dict[str, Any]) -> dict[str, str]:
    return {c["custom_id"]: c["label"] for row in message["components"] for c in row["components"]}


async def jobs_from(easel: Any, parent: str) -> list[Any]:
    return list(await easel.bot.db.fetchall("SELECT id, user_id, credits FROM jobs WHERE parent_job = ?", (parent,)))


async def test_the_queued_message_and_the_buttons_say_what_it_costs(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    await start(easel_factory, studio)
    member = emulator.add_member("payer")
    ix, job_id = await run_job(emulator, member, style="sync")
    queued = (await ix.response())["data"]["content"]
    assert "1 credit · 19 left today" in queued
    result = await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=10)
    assert buttons(result)[f"ej:again:{job_id}"] == "Again · 1 credit"


async def test_a_costly_button_asks_first_and_a_press_on_someone_elses_result_is_charged_to_the_presser(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio, quota_costs={"ai_image": 6}, quota_server_allowance=40)
    owner, other = emulator.add_member("owner"), emulator.add_member("other")
    ix, job_id = await run_job(emulator, owner, style="sync")
    result = await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=10)
    assert buttons(result)[f"ej:again:{job_id}"] == "Again · 6 credits"

    asked = await emulator.press_button(result, f"ej:again:{job_id}", user=other)
    body = await asked.response()
    assert asked.ephemeral
    assert "costs **6 credits**, charged to you" in body["data"]["content"]
    assert await jobs_from(easel, job_id) == [], "nothing is spent before the presser says yes"

    confirm_id = f"ej:confirm:{job_id}:again"
    prompt = body["data"]
    assert confirm_id in buttons(prompt)
    yes = await emulator.press_button({**prompt, "id": asked.original_id or 0}, confirm_id, user=other)
    queued = (await yes.response())["data"]["content"]
    assert "6 credits" in queued
    assert "out of **your** credits" in queued
    (child,) = await jobs_from(easel, job_id)
    assert (child["user_id"], child["credits"]) == (other.id, 6), "charged to the presser"
