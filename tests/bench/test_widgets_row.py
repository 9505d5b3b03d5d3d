"""The widget sockets row says how many sockets the gateway really held and sets the bare aiohttp
baseline beside it; rows of earlier runs (no baseline, no socket count) still print."""

from __future__ import annotations

from typing import Any

from bench.__main__ import table


def _widgets(**extra: Any) -> dict[str, Any]:
    return {
        "mode": "embedded",
        "event_loop": "asyncio",
        "sockets": 10_000,
        "open": 10_000,
        "rss_before_mb": 113.6,
        "rss_open_mb": 280.2,
        "per_socket_kb": 17.1,
        "target": "gateway RSS <= 300 MB",
        "cpu_s": 29.9,
        "peak_rss_mb": 280.5,
        **extra,
    }


def _row(result: dict[str, Any]) -> str:
    rows = [r for r in table({"widgets": result}).splitlines() if r.startswith("| widget sockets")]
    assert len(rows) == 1
    return rows[0]


def test_the_row_shows_the_sockets_held_and_the_bare_baseline():
    row = _row(
        _widgets(
            server_sockets=9_999,
            hold_s=40,
            rss_held_mb=280.5,
            server_sockets_held=9_999,
            ratio_per_socket=1.1,
            baseline={"rss_open_mb": 187.7, "per_socket_kb": 15.5, "rss_before_mb": 36.2},
        )
    )
    assert "(10,000/10,000 open, 9,999 on the server)" in row
    assert "RSS 280.2 MB, 17.1 KB/socket over 113.6 MB; after 40 s 280.5 MB, 9,999 held" in row
    assert (
        "| bare aiohttp: 187.7 MB, 15.5 KB/socket over 36.2 MB | 1.1\N{MULTIPLICATION SIGN} per socket |"
        in row
    )


def test_a_row_from_an_earlier_run_still_prints():
    row = _row(_widgets())
    assert "(10,000/10,000 open) | RSS 280.2 MB, 17.1 KB/socket over 113.6 MB | — | — |" in row
