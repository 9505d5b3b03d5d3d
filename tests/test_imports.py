"""Every module imports on its own, with no I/O and no circular import (DESIGN.md §1)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["inbox", "channels", "routing", "bots", "reports", "gateway"]


def all_modules() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package)
        for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            if ".migrations" in info.name:
                continue
            names.append(info.name)
    return names


@pytest.mark.parametrize("module", all_modules())
def test_module_imports_alone(module: str):
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
