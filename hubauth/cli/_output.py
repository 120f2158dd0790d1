"""How the ``hubauth`` command prints: JSON, aligned tables, a spawn's progress bar."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

__all__ = ["bar", "print_json", "table"]


def print_json(data: Any, out: TextIO) -> None:
    out.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) or "-"
    return " ".join(str(value).split())


def table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], out: TextIO) -> None:
    """``rows`` as aligned columns under upper-case headings (``-`` for nothing)."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    for line in ([c.upper() for c in columns], *cells):
        out.write("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() + "\n")


def bar(progress: float, message: str, width: int = 30) -> str:
    """``[#########.....]  45% message``: one line of a spawn's progress."""
    share = min(max(progress, 0.0), 100.0) / 100.0
    filled = round(width * share)
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {100 * share:3.0f}% {' '.join(message.split())}"
    )
