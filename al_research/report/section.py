"""What a report section sees (`Report`) and what it gives (`Section`).

A section is one module in `report/sections/`, registered once in `sections.SECTIONS` (in the
order summary.md shows them). `analyse` calls every section's `compute` in that order and keeps
what it returns in `report.results[section.name]`; summary.md, the CSV files, the plots, the
tables printed at the end of a sweep and the summary run's metrics are then made by going
through the same list, from the sections that `apply` to the report. Every number a section
prints comes from the runs (or from the statistics' own constants), never from a literal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from al_research.report.arms import Arm, Factors
from al_research.report.runs import RunRecord, Selection

Table = tuple[Sequence[str], Iterable[Sequence[object]]]  # one CSV file: header, rows
RunMetric = tuple[str, float, int]  # one metric of the summary run: key, value, step


@dataclass
class Report:
    """The runs, grouped into arms, and what each section computed from them."""

    selection: Selection
    target: float  # the accuracy the "labels to reach" columns ask for
    arms: list[Arm]
    factors: Factors = field(default_factory=lambda: Factors({}))
    notes: list[str] = field(default_factory=list)  # warnings, shown first
    results: dict[str, Any] = field(default_factory=dict)  # section name -> its `compute`
    out_dir: Path | None = None
    summary_run_id: str | None = None

    @property
    def runs(self) -> list[RunRecord]:
        return [r for a in self.arms for r in a.runs]

    @property
    def n_runs(self) -> int:
        return sum(len(a.runs) for a in self.arms)

    @property
    def test_selected_runs(self) -> int:
        return sum(r.test_selected for a in self.arms for r in a.runs)


@runtime_checkable
class Section(Protocol):
    """One part of the report. Subclass it and override what the section has: the defaults
    say nothing, write no file and print no table."""

    name: str  # its key in `report.results`

    def compute(self, report: Report) -> Any:
        """What the section shows, from `report.arms` (it may add to `report.notes`)."""
        return None

    def applies(self, report: Report) -> bool:
        """Whether the report has the section (asked after every `compute`)."""
        return True

    def markdown(self, report: Report) -> str:
        """Its part of summary.md: lines ending with an empty one."""
        return ""

    def csvs(self, report: Report) -> dict[str, Table]:
        """The CSV files it writes: file name -> (header, rows)."""
        return {}

    def figures(self, report: Report, out: Path) -> list[Path]:
        """Draw its plots into the folder `out`; the files it wrote."""
        return []

    def main_table(self, report: Report) -> str | None:
        """What the console shows of it at the end of a sweep (None: nothing)."""
        return None

    def run_metrics(self, report: Report) -> Iterable[RunMetric]:
        """Headline metrics for the summary run (non-finite values are left out)."""
        return ()
