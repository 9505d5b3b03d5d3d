"""Flows load from files: the example flows are valid, and `switchboard bot load` stores them."""

from __future__ import annotations

from pathlib import Path

import pytest

from bots.flow import load_flow, load_flow_file
from gateway.cli import main

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "bots" / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_flows_are_valid(path: Path):
    name, kind, definition = load_flow_file(path)
    assert name and load_flow(kind, definition).states


def test_bot_load_stores_and_replaces_a_flow(tmp_path: Path, capsys):
    data = ["--data-dir", str(tmp_path)]
    assert main(["user", "create", "--email", "admin@x.test", "--role", "admin", *data]) == 0
    faq = next(p for p in EXAMPLES if p.name == "faq.yaml")
    assert main(["bot", "load", str(faq), *data]) == 0
    assert main(["bot", "load", str(faq), *data]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-2:] == ["loaded faq bot 'Shop FAQ' as bot 1"] * 2

    broken = tmp_path / "broken.yaml"
    broken.write_text("start: nowhere\nstates: {a: {end: true}}\n")
    assert main(["bot", "load", str(broken), *data]) == 2
    assert "definition.start: no state named 'nowhere'" in capsys.readouterr().err
