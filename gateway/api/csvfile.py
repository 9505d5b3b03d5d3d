"""CSV downloads: a header and rows as a ``text/csv`` attachment, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from aiohttp import web


def spreadsheet_cell(value: Any) -> Any:
    """The value as a cell; text a spreadsheet would run as a formula gets a leading quote."""
    # A spreadsheet runs a cell that starts with one of these as a formula (names are user text).
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def csv_response(columns: Sequence[str], rows: Iterable[Sequence[Any]], filename: str) -> web.Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([spreadsheet_cell(v) for v in row])
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
