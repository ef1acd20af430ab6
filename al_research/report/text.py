"""Numbers and tables as the report writes them (markdown, metric names): shared by sections."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

from al_research.report.stats import Estimate


def md_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def p_text(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value:.4g}"


def interval_text(e: Estimate | None, digits: int = 4) -> str:
    if e is None or e.n == 0:
        return "—"
    if not math.isfinite(e.low):
        return f"{e.mean:+.{digits}f} (n={e.n}, no CI)"
    return f"{e.mean:+.{digits}f} [{e.low:+.{digits}f}, {e.high:+.{digits}f}]"


def counts(steps: Iterable[int]) -> str:
    """Labelled counts as text: one number, or the range found."""
    found = sorted(set(steps))
    return str(found[0]) if len(found) == 1 else f"{found[0]}–{found[-1]}"


def percent(fraction: float) -> str:
    """A confidence level as the report names it: 0.95 -> "95%"."""
    return f"{fraction:.0%}"


def metric_name(text: str) -> str:
    """An arm's label as (part of) an MLflow metric name."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", text)
