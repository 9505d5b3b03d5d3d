"""``switchboard simulator`` (standalone, own port) and ``switchboard simulate send|load``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
from typing import Any

import aiohttp
from aiohttp import web

from channels.whatsapp.simulator.app import create_simulator_app
from channels.whatsapp.simulator.load import check_local, run_load
from channels.whatsapp.simulator.model import Business, StaticDirectory
from channels.whatsapp.simulator.platform import Simulator, SimulatorSettings

DEFAULT_URL = "http://127.0.0.1:8080/simulator"


def add_commands(sub: Any) -> None:
    """Add ``simulator`` and ``simulate`` to the ``switchboard`` argument parser."""
    sim = sub.add_parser("simulator", help="run the WhatsApp simulator on its own port")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8090)
    sim.add_argument("--phone-number-id", default="100000000000001")
    sim.add_argument("--display-phone-number", default="+15550100001")
    sim.add_argument("--webhook-url", required=True, help="the gateway's /webhooks/whatsapp/{channel_id}")
    sim.add_argument("--verify-token", default=os.environ.get("WA_SIM_VERIFY_TOKEN", ""))
    sim.add_argument("--window-mode", choices=["sync", "status"], default="sync")
    sim.add_argument("--mps", type=float, default=80.0, help="throughput limit, messages per second")
    # Secrets by environment, not flags: flags show in the process list.
    sim.epilog = "The access token and app secret come from WA_SIM_ACCESS_TOKEN and WA_SIM_APP_SECRET."

    simulate = sub.add_parser("simulate", help="act as WhatsApp contacts against a running simulator")
    simulate_sub = simulate.add_subparsers(dest="simulate_command", required=True)
    send = simulate_sub.add_parser("send", help="one contact sends one text message")
    send.add_argument(
        "--from", dest="sender", required=True, help="the contact's number, e.g. +5511987654321"
    )
    send.add_argument("--name", help="the contact's profile name")
    send.add_argument("--url", default=DEFAULT_URL, help=f"the simulator (default {DEFAULT_URL})")
    send.add_argument("--business", help="phone_number_id (default: the simulator's first)")
    send.add_argument("text")
    load = simulate_sub.add_parser("load", help="many contacts write in; report throughput and latency")
    load.add_argument("--contacts", type=int, default=100)
    load.add_argument("--rate", type=float, default=20.0, help="messages per second in total")
    load.add_argument("--duration", type=float, default=10.0, help="seconds")
    load.add_argument("--url", default=DEFAULT_URL)
    load.add_argument("--business")
    load.add_argument("--json", action="store_true", help="print the report as JSON")


async def run_command(args: argparse.Namespace) -> int:
    if args.command == "simulator":
        return await _standalone(args)
    if args.simulate_command == "send":
        return await _send(args)
    return await _load(args)


async def _standalone(args: argparse.Namespace) -> int:
    token, secret = os.environ.get("WA_SIM_ACCESS_TOKEN"), os.environ.get("WA_SIM_APP_SECRET")
    if not token or not secret:
        print("error: set WA_SIM_ACCESS_TOKEN and WA_SIM_APP_SECRET (the channel's access_token, app_secret)")
        return 2
    business = Business(
        phone_number_id=args.phone_number_id,
        display_phone_number=args.display_phone_number,
        access_token=token,
        app_secret=secret,
        webhook_url=args.webhook_url,
        verify_token=args.verify_token,
    )
    simulator = Simulator(
        StaticDirectory([business]),
        SimulatorSettings(window_mode=args.window_mode, messages_per_second=args.mps),
    )
    root = web.Application()
    root.add_subapp("/simulator", create_simulator_app(simulator))
    runner = web.AppRunner(root, shutdown_timeout=2)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    base = f"http://{args.host}:{args.port}/simulator"
    print(f"WhatsApp simulator: phones at {base}/ ; Graph API base_url {base}/graph", flush=True)
    if business.verify_token:
        ok = await simulator.verify_webhook(business)
        print(f"webhook verification handshake with {business.webhook_url}: {'ok' if ok else 'FAILED'}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    return 0


async def _business(http: aiohttp.ClientSession, base: str, given: str | None) -> str:
    if given:
        return given
    async with http.get(f"{base}/api/state") as resp:
        state = await resp.json()
    if not state["businesses"]:
        raise ValueError("the simulator knows no business number")
    return str(state["businesses"][0]["phone_number_id"])


async def _send(args: argparse.Namespace) -> int:
    base = args.url.rstrip("/")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        try:
            business = await _business(http, base, args.business)
            body = {
                "business": business,
                "contact": args.sender,
                "name": args.name,
                "type": "text",
                "text": args.text,
                "wait": True,
            }
            async with http.post(f"{base}/api/send", json=body) as resp:
                answer = await resp.json(content_type=None)
                status = resp.status
        except (aiohttp.ClientError, ValueError) as exc:
            print(f"error: {exc}")
            return 1
    if status != 201:
        print(f"error: {answer.get('error', status)}")
        return 1
    state = "acknowledged by the gateway" if answer.get("acknowledged") else "NOT acknowledged"
    print(f"sent {answer['id']} from {args.sender}: {state} ({answer.get('latency_ms', 0):.0f} ms)")
    return 0 if answer.get("acknowledged") else 1


async def _load(args: argparse.Namespace) -> int:
    try:
        check_local(args.url)
        report = await run_load(args.url, args.contacts, args.rate, args.duration, args.business)
    except (ValueError, aiohttp.ClientError) as exc:
        print(f"error: {exc}")
        return 2
    summary = report.summary()
    if args.json:
        print(json.dumps(summary))
    else:
        lat = summary["latency_ms"]
        print(
            f"sent {report.sent}, acknowledged {report.acknowledged}, errors {report.errors} "
            f"in {report.elapsed:.1f}s ({summary['achieved_rate']}/s); latency ms {lat}"
        )
    return 0 if report.errors == 0 and report.acknowledged == report.sent else 1
