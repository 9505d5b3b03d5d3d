"""The simulator on its own: webhook retries with back-off, deliberate duplicates, the CLI and load mode."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.whatsapp.signature import HEADER, verify
from channels.whatsapp.simulator import Business, Simulator, SimulatorSettings, StaticDirectory
from channels.whatsapp.simulator.load import check_local, run_load
from tests.services import free_port


class FlakyReceiver:
    """A webhook endpoint on 127.0.0.1 that answers the scripted statuses, then 200."""

    def __init__(self, script: list[int]) -> None:
        self.script = script
        self.bodies: list[bytes] = []
        self.signatures: list[str | None] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.read())
        self.signatures.append(request.headers.get(HEADER))
        return web.Response(status=self.script.pop(0) if self.script else 200)

    async def __aenter__(self) -> FlakyReceiver:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/hook"
        return self

    async def __aexit__(self, *exc) -> None:
        await self.runner.cleanup()


def business(url: str) -> Business:
    return Business("123", "+15550100009", "token", "secret", url)


async def test_webhooks_are_retried_with_back_off_until_200():
    async with FlakyReceiver([500, 503, 404]) as receiver:
        sim = Simulator(
            StaticDirectory([business(receiver.url)]), SimulatorSettings(retry_delays=(0.01, 0.02, 0.04))
        )
        await sim.start()
        try:
            message, delivery = await sim.contact_sends("123", "5511987650300", "text", {"body": "retry me"})
            await asyncio.wait_for(delivery.done.wait(), 10)
        finally:
            await sim.stop()
    assert delivery.attempts == [500, 503, 404, 200] and delivery.acknowledged
    assert len(set(receiver.bodies)) == 1  # the same bytes every time
    assert all(verify("secret", receiver.bodies[0], s) for s in receiver.signatures)
    assert (
        json.loads(receiver.bodies[0])["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
        == message.wamid
    )
    assert message.status == "delivered"  # ✔✔ on the phone only once the business acknowledged


async def test_webhooks_give_up_after_the_schedule_and_duplicates_on_purpose():
    async with FlakyReceiver([500] * 10) as receiver:
        sim = Simulator(
            StaticDirectory([business(receiver.url)]), SimulatorSettings(retry_delays=(0.01, 0.01))
        )
        await sim.start()
        try:
            message, delivery = await sim.contact_sends("123", "5511987650301", "text", {"body": "lost"})
            await asyncio.wait_for(delivery.done.wait(), 10)
            assert delivery.attempts == [500, 500, 500] and not delivery.acknowledged
            assert message.status == "sent"  # never acknowledged: one tick

            receiver.script.clear()
            sim.duplicate_next = 1
            _, twice = await sim.contact_sends("123", "5511987650301", "text", {"body": "twice"})
            await asyncio.wait_for(twice.done.wait(), 10)
        finally:
            await sim.stop()
    assert twice.attempts == [200, 200] and receiver.bodies[-1] == receiver.bodies[-2]


async def test_graph_api_needs_the_bearer_token_and_a_known_number(world):
    url = f"{world.public_url}/simulator/graph/v21.0/{world.business.phone_number_id}/messages"
    body = {
        "messaging_product": "whatsapp",
        "to": "5511987650302",
        "type": "template",
        "template": {"name": "hello_world", "language": {"code": "en_US"}},
    }
    async with world.gw.http.post(url, json=body, headers={"Authorization": "Bearer wrong"}) as resp:
        assert resp.status == 401 and (await resp.json())["error"]["code"] == 190
    async with world.gw.http.post(url, json=body) as resp:
        assert resp.status == 401
    other = url.replace(world.business.phone_number_id, "999")
    headers = {"Authorization": f"Bearer {world.business.access_token}"}
    async with world.gw.http.post(other, json=body, headers=headers) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["code"] == 100
    async with world.gw.http.post(url, json=body, headers=headers) as resp:
        answer = await resp.json()
    assert resp.status == 200
    assert answer["contacts"] == [{"input": "5511987650302", "wa_id": "5511987650302"}]
    assert (
        answer["messages"][0]["id"].startswith("wamid.")
        and answer["messages"][0]["message_status"] == "accepted"
    )


async def test_load_mode_reports_sent_acknowledged_and_latency(world):
    report = await run_load(f"{world.public_url}/simulator", contacts=5, rate=40, duration=0.5)
    summary = report.summary()
    assert (summary["sent"], summary["acknowledged"], summary["errors"]) == (20, 20, 0)
    latency = summary["latency_ms"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    status, page = await world.gw.api("GET", "/conversations")
    whatsapp = [c for c in page["items"] if c["channel_id"] == world.channel_id]
    assert len(whatsapp) == 5
    counts = [len(await world.messages(c["id"])) for c in whatsapp]
    assert sorted(counts) == [4, 4, 4, 4, 4]


@pytest.mark.parametrize(
    "url", ["http://example.com/simulator", "http://10.0.0.1:8080/simulator", "file:///x"]
)
def test_load_goes_only_to_this_machine(url):
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        check_local(url)


async def switchboard(*args: str, env: dict | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )


async def test_cli_simulate_send(world):
    proc = await switchboard(
        "simulate",
        "send",
        "--from",
        "+5511987650303",
        "--name",
        "Duda",
        "--url",
        f"{world.public_url}/simulator",
        "Oi pelo terminal",
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, out
    assert b"acknowledged by the gateway" in out
    wamid = out.decode().split()[1]
    _, message = await world.conversation_of(wamid)
    assert message["text"] == "Oi pelo terminal"


async def test_cli_standalone_simulator_talks_to_the_gateway(world):
    adapter = await world.adapter()
    port = free_port()
    proc = await switchboard(
        "simulator",
        "--port",
        str(port),
        "--phone-number-id",
        world.business.phone_number_id,
        "--webhook-url",
        world.webhook_url,
        env={
            "WA_SIM_ACCESS_TOKEN": adapter.config.access_token,
            "WA_SIM_APP_SECRET": adapter.config.app_secret,
            "WA_SIM_VERIFY_TOKEN": adapter.config.verify_token,
        },
    )
    try:
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert f"http://127.0.0.1:{port}/simulator/graph".encode() in first, first
        handshake = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert handshake.rstrip().endswith(b": ok"), handshake
        send = await switchboard(
            "simulate",
            "send",
            "--from",
            "+5511987650304",
            "--url",
            f"http://127.0.0.1:{port}/simulator",
            "standalone hello",
        )
        out, _ = await asyncio.wait_for(send.communicate(), 30)
        assert send.returncode == 0, out
        _, message = await world.conversation_of(out.decode().split()[1])
        assert message["text"] == "standalone hello"
    finally:
        proc.terminate()
        await proc.wait()


scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=12)
graph_json = scalars | st.recursive(
    scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=10), c, max_size=4),
    max_leaves=20,
)
recipients = st.one_of(st.sampled_from(["5511987654321", "+1 650 555 1234"]), st.text(max_size=15))


def typed(kind: str, part) -> st.SearchStrategy:
    return st.fixed_dictionaries(
        {"messaging_product": st.just("whatsapp"), "to": recipients, "type": st.just(kind), kind: part},
        optional={"context": graph_json},
    )


template_parts = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["hello_world", "order_update", "nope"]),
        "language": st.sampled_from([{"code": "en_US"}, {"code": "en_US"}, "en_US", None]),
        "components": st.one_of(
            graph_json,
            st.lists(st.fixed_dictionaries({"type": st.just("body"), "parameters": graph_json}), max_size=2),
        ),
    }
)
interactive_parts = st.fixed_dictionaries(
    {"type": st.just("button"), "body": graph_json, "action": st.fixed_dictionaries({"buttons": graph_json})}
)
SEND_BODIES = {
    "json": graph_json,
    "text": typed("text", st.one_of(graph_json, st.fixed_dictionaries({"body": graph_json}))),
    "template": typed("template", st.one_of(template_parts, graph_json)),
    "image": typed("image", graph_json),
    "interactive": typed("interactive", st.one_of(interactive_parts, graph_json)),
    "read": st.fixed_dictionaries(
        {"messaging_product": st.just("whatsapp"), "status": st.just("read"), "message_id": graph_json}
    ),
}


@pytest.mark.parametrize("kind", SEND_BODIES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_graph_send_answers_every_body_with_a_graph_shape(kind, data):
    body = data.draw(SEND_BODIES[kind])

    # WhatsApp's side of the parser: whatever the business posts, the answer is a success or Graph's
    # error shape, never an exception.
    async def run() -> tuple[int, dict]:
        sim = Simulator(
            StaticDirectory([business("http://127.0.0.1:9/")]), SimulatorSettings(retry_delays=())
        )
        await sim.start()
        try:
            return await sim.send_from_business(business("http://127.0.0.1:9/"), body)
        finally:
            await sim.stop()

    status, answer = asyncio.run(run())
    if status == 200:
        assert answer.get("success") is True or answer["messages"][0]["id"].startswith("wamid.")
    else:
        assert status in (400, 401) and isinstance(answer["error"]["code"], int)
        assert answer["error"]["message"].startswith(f"(#{answer['error']['code']})")


def test_load_report_percentiles_are_nearest_rank():
    from channels.whatsapp.simulator.load import LoadReport

    report = LoadReport(1, 1, 1, latencies_ms=[float(n) for n in range(1, 101)])
    assert (report.percentile(50), report.percentile(90), report.percentile(99), report.percentile(100)) == (
        50.0,
        90.0,
        99.0,
        100.0,
    )
    assert LoadReport(1, 1, 1).percentile(50) is None
