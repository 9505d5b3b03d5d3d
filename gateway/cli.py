"""The ``switchboard`` command: serve, worker, migrate, user create, bot load, reports rebuild, simulator."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from aiohttp import web
from sqlalchemy import select

from channels.whatsapp.simulator.commands import add_commands as add_simulator_commands
from channels.whatsapp.simulator.commands import run_command as run_simulator_command
from gateway.api.admin import create_user_in
from gateway.api.errors import ApiError
from gateway.app import make_app
from gateway.config import Settings
from gateway.container import build
from gateway.demo import ADMIN_EMAIL, DEMO_PASSWORD, seed_demo
from gateway.worker import run_worker
from inbox import tables as t
from inbox.identities import InvalidAddress, normalize_email
from inbox.model import Role
from inbox.schema import migrate
from reports.rebuild import rebuild

_LOGGER = logging.getLogger("switchboard")


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("http_host", "http_port", "smtp_host", "smtp_port", "data_dir", "database_url", "redis_url"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    if getattr(args, "demo", False):
        overrides["simulator"] = True
    return Settings(**overrides)


async def _serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    container = build(settings)
    app = make_app(container)
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()  # starts the container: migrations, bus, jobs, channels
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    await site.start()
    if args.demo:
        token = await seed_demo(container)
        print(f"Demo admin: {ADMIN_EMAIL} / {DEMO_PASSWORD}")
        print(f"Demo admin API token: {token}")
    print(f"Switchboard serving on {settings.effective_public_url()}/", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    return 0


async def _migrate(args: argparse.Namespace) -> int:
    container = build(_settings(args))
    container.settings.data_dir.mkdir(parents=True, exist_ok=True)
    container.db.connect()
    try:
        await migrate(container.db)
    finally:
        await container.db.close()
    print("database is up to date")
    return 0


async def _user_create(args: argparse.Namespace) -> int:
    try:
        email = normalize_email(args.email)
    except InvalidAddress as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    container = build(_settings(args))
    container.settings.data_dir.mkdir(parents=True, exist_ok=True)
    container.db.connect()
    try:
        await migrate(container.db)
        now = container.clock()
        async with container.db.write() as session:
            account_id = await session.scalar(select(t.Account.id).order_by(t.Account.id).limit(1))
            if account_id is None:
                account = t.Account(
                    name="Switchboard",
                    timezone="UTC",
                    included_conversations=1000,
                    settings={},
                    created_at=now,
                )
                session.add(account)
                await session.flush()
                account_id = account.id
            try:
                user, token = await create_user_in(
                    session,
                    account_id=account_id,
                    email=email,
                    name=args.name,
                    role=Role(args.role),
                    password=args.password,
                    now=now,
                )
            except ApiError as exc:
                print(f"error: {exc.message}", file=sys.stderr)
                return 1
    finally:
        await container.db.close()
    print(f"created {user.role} {user.email} (id {user.id}); API token:")
    print(token)
    return 0


async def _bot_load(args: argparse.Namespace) -> int:
    """Load (or replace, by name) a bot flow from a YAML or JSON file into the first account."""
    from pathlib import Path

    from bots.flow import FlowInvalid, load_flow_file

    try:
        name, kind, definition = load_flow_file(Path(args.file))
    except (OSError, FlowInvalid) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    name = args.name or name
    container = build(_settings(args))
    container.settings.data_dir.mkdir(parents=True, exist_ok=True)
    container.db.connect()
    try:
        await migrate(container.db)
        now = container.clock()
        async with container.db.write() as session:
            account_id = await session.scalar(select(t.Account.id).order_by(t.Account.id).limit(1))
            if account_id is None:
                print("error: no account yet; create a user first", file=sys.stderr)
                return 1
            bot = await session.scalar(
                select(t.BotFlow).where(t.BotFlow.account_id == account_id, t.BotFlow.name == name)
            )
            if bot is None:
                bot = t.BotFlow(account_id=account_id, name=name, created_at=now, enabled=True)
                session.add(bot)
            bot.kind, bot.definition, bot.updated_at = kind, definition, now
            await session.flush()
            bot_id = bot.id
    finally:
        await container.db.close()
    print(f"loaded {kind} bot {name!r} as bot {bot_id}")
    return 0


async def _reports_rebuild(args: argparse.Namespace) -> int:
    """Replay the event log into the report facts (with the gateways stopped)."""
    container = build(_settings(args))
    container.settings.data_dir.mkdir(parents=True, exist_ok=True)
    container.db.connect()
    try:
        await migrate(container.db)
        events = await rebuild(container.db)
    finally:
        await container.db.close()
    print(f"report facts rebuilt from {events} events")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="switchboard", description="Unified inbox and channel gateway")
    sub = p.add_subparsers(dest="command", required=True)

    def storage(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--data-dir", dest="data_dir", help="SQLite file and media (SWITCHBOARD_DATA_DIR)")
        sp.add_argument("--database-url", dest="database_url", help="SWITCHBOARD_DATABASE_URL")
        sp.add_argument("--redis-url", dest="redis_url", help="SWITCHBOARD_REDIS_URL (scale-out)")

    serve = sub.add_parser("serve", help="run the gateway (HTTP and SMTP)")
    serve.add_argument("--demo", action="store_true", help="seed a demo account and print its admin token")
    serve.add_argument("--host", dest="http_host", help="SWITCHBOARD_HTTP_HOST (default 127.0.0.1)")
    serve.add_argument("--port", dest="http_port", type=int, help="SWITCHBOARD_HTTP_PORT (default 8080)")
    serve.add_argument("--smtp-host", dest="smtp_host", help="SWITCHBOARD_SMTP_HOST")
    serve.add_argument("--smtp-port", dest="smtp_port", type=int, help="SWITCHBOARD_SMTP_PORT (default 2525)")
    storage(serve)

    worker = sub.add_parser("worker", help="run an RQ worker for the jobs (needs SWITCHBOARD_REDIS_URL)")
    worker.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    storage(worker)

    mig = sub.add_parser("migrate", help="create or upgrade the database schema")
    storage(mig)

    user = sub.add_parser("user", help="manage users")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    create = user_sub.add_parser("create", help="create a user; prints its API token on the last line")
    create.add_argument("--email", required=True)
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--name")
    create.add_argument("--password")
    storage(create)

    bot = sub.add_parser("bot", help="manage bot flows")
    bot_sub = bot.add_subparsers(dest="bot_command", required=True)
    load = bot_sub.add_parser("load", help="load or replace (by name) a bot flow from a YAML or JSON file")
    load.add_argument("file")
    load.add_argument("--name", help="defaults to the file's name: field, else its file name")
    storage(load)
    reports = sub.add_parser("reports", help="report facts")
    reports_sub = reports.add_subparsers(dest="reports_command", required=True)
    rebuild_cmd = reports_sub.add_parser(
        "rebuild", help="rebuild the report facts from the event log (stop the gateways first)"
    )
    storage(rebuild_cmd)
    add_simulator_commands(sub)  # simulator, simulate send|load
    return p


def run_loop(main: Coroutine[Any, Any, int], choice: str) -> int:
    """Run ``main`` on uvloop when chosen (it must be installed), else on the standard asyncio loop."""
    if choice == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    return asyncio.run(main)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=Settings().log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request (each Telegram long poll) at INFO, with URLs that carry bot tokens.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.command == "serve":
        return run_loop(_serve(args), Settings().event_loop)
    if args.command == "worker":
        settings = _settings(args)
        if not settings.redis_url:
            print("error: switchboard worker needs SWITCHBOARD_REDIS_URL (or --redis-url)", file=sys.stderr)
            return 2
        return run_worker(settings, burst=args.burst)
    if args.command == "migrate":
        return asyncio.run(_migrate(args))
    if args.command in ("simulator", "simulate"):
        return asyncio.run(run_simulator_command(args))
    if args.command == "user" and args.user_command == "create":
        return asyncio.run(_user_create(args))
    if args.command == "bot" and args.bot_command == "load":
        return asyncio.run(_bot_load(args))
    if args.command == "reports" and args.reports_command == "rebuild":
        return asyncio.run(_reports_rebuild(args))
    return 2


if __name__ == "__main__":
    sys.exit(main())
