"""The bench table puts a figure's embedded and scale-out rows side by side, with the cluster's services."""

from __future__ import annotations

from bench.__main__ import figure_of, key_of, table


def _quota(mode: str, cpu: float) -> dict:
    result = {
        "mode": mode,
        "event_loop": "asyncio",
        "sends": 300,
        "limit": 100,
        "conversations_sent": 100,
        "quota_used": 100,
        "alert_tiers": [70, 80, 90, 95, 100],
        "alert_mails": 5,
        "target": "exactly `limit` conversations, 5 alerts",
        "cpu_s": cpu,
        "peak_rss_mb": 170.0,
    }
    if mode == "scale-out":
        result["postgres"] = {"cpu_s": 2.5, "pss_mb": 100.0}
        result["redis"] = {"cpu_s": 0.1, "pss_mb": 5.0}
    return result


def test_modes_sit_side_by_side_under_their_own_keys():
    assert key_of("send", "uvloop", "uvloop", "embedded") == "send"  # earlier runs' keys are kept
    assert key_of("send", "asyncio", "uvloop", "scale-out") == "send@asyncio+scale-out"
    assert figure_of("send@asyncio+scale-out") == "send"
    results = {
        "date": "2026-11-26",
        "machine": {"cpus": 2},
        "quota+scale-out": _quota("scale-out", 13.0),
        "quota": _quota("embedded", 9.4),
    }
    rows = [r for r in table(results).splitlines() if r.startswith("| quota")]
    assert len(rows) == 2
    assert "[embedded" in rows[0] and "| 9.4 | 170.0 |" in rows[0]
    assert "[scale-out" in rows[1]
    assert "13.0 (+ postgres 2.5, redis 0.1) | 170.0 (+ postgres 100.0 PSS, redis 5.0 PSS)" in rows[1]


def test_reports_print_one_row_per_report_with_its_p99():
    from bench.reporting import REQUESTS

    figures = {
        name: {"p50_ms": 1.0, "p99_ms": 100.0 + i, "gateway_cpu_ms_per_request": 0.5}
        for i, name in enumerate(REQUESTS)
    }
    results = {
        "reports": {
            "mode": "embedded",
            "event_loop": "asyncio",
            "conversations": 5000,
            "messages": 50000,
            "facts": 83690,
            "target": "p99 <= 200 ms",
            "cpu_s": 14.2,
            "peak_rss_mb": 121.2,
            **figures,
        }
    }
    rows = [r for r in table(results).splitlines() if r.startswith("| reports")]
    assert [r.split()[2] for r in rows] == list(REQUESTS)
    assert "p99 100.0 ms" in rows[0] and "83,690 facts" in rows[0] and "| 14.2 | 121.2 |" in rows[0]
    assert f"p99 {100.0 + len(REQUESTS) - 1} ms" in rows[-1]
