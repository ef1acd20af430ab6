"""`analyse`: the runs grouped into arms, the warnings every report has, then each section's
own computation (`sections.SECTIONS`, in order)."""

from __future__ import annotations

from collections.abc import Sequence

from al_research.report.arms import Factors, group_arms, pairing_notes
from al_research.report.runs import RunRecord, Selection
from al_research.report.section import Report
from al_research.report.sections import SECTIONS


def analyse(selection: Selection, records: Sequence[RunRecord], target: float,
            notes: Sequence[str], factors: Factors | None = None) -> Report:
    """Everything the report shows, computed from the runs."""
    factors = factors or Factors({})
    arms = group_arms(records, factors)
    notes = [*notes, *pairing_notes(arms)]
    flagged = [a.name for a in arms if a.test_selected]
    if flagged:
        notes.insert(0, f"test-selected: {', '.join(flagged)} early-stopped on the TEST set "
                        f"(tag test_selected=true), so their test accuracies are optimistic; "
                        f"marked [test-selected] in every table and plot")
    report = Report(selection, target, arms, factors, notes)
    for section in SECTIONS:
        report.results[section.name] = section.compute(report)
    return report
