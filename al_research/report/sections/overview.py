"""The report's head: what was selected and from where, how arms are formed, what the
intervals are and what one test image is worth (from the runs' test-set size), runs that
early-stopped on the test set, then every warning."""

from __future__ import annotations

from collections.abc import Iterable

from al_research.report.arms import TEST_SELECTED_MARK
from al_research.report.runs import RunRecord
from al_research.report.section import Report, Section
from al_research.report.stats import CONFIDENCE
from al_research.report.text import percent
from al_research.tracking.names import Param


def test_set_size(runs: Iterable[RunRecord]) -> int | None:
    """The test-set size every run logged (`data.test_size`); None when the runs differ or
    some run does not say."""
    sizes = {r.params.get(Param.TEST_SIZE) for r in runs}
    if len(sizes) != 1:
        return None
    (size,) = sizes
    try:
        n = int(str(size))
    except ValueError:
        return None
    return n if n > 0 else None


def test_size(report: Report) -> int | None:
    return report.results[SECTION.name]


def intervals_text(report: Report) -> str:
    """How the intervals are made and, when the runs agree on their test set, what one test
    image is worth in accuracy."""
    text = f"{percent(CONFIDENCE)} t-intervals over seeds (mean ± half-width)"
    n = test_size(report)
    return text if n is None else f"{text}; one test image of {n} is {1 / n:.2g}"


class Overview(Section):
    name = "overview"

    def compute(self, report: Report) -> int | None:
        return test_set_size(report.runs)

    def markdown(self, report: Report) -> str:
        sel = report.selection
        title = sel.sweep or sel.experiment or "all experiments"
        experiments = ", ".join(sorted({sel.experiment_names.get(r.experiment_id,
                                                                 r.experiment_id)
                                        for r in report.runs}))
        flagged = report.test_selected_runs
        parts = [
            f"# Report: {title}",
            "",
            f"- MLflow store: `{sel.uri}`",
            f"- experiment: {experiments}",
            f"- sweep: `{sel.sweep}`" if sel.sweep else "- sweep: (all runs of the experiment)",
            f"- runs: {report.n_runs} finished "
            f"({', '.join(f'{a.label}: {len(a.runs)}' for a in report.arms)})",
            f"- arms are configurations: the keys that vary across the runs (seed excepted), "
            f"at their reference values: {report.factors.text()}; an arm is named by its "
            f"strategy and the keys where it leaves the reference",
            f"- intervals: {intervals_text(report)}",
        ]
        if flagged:
            parts.append(f"- **{flagged} run(s) early-stopped on the test set** "
                         f"(test_selected=true): marked{TEST_SELECTED_MARK}; their test "
                         f"accuracies are optimistic")
        parts.append("")
        if report.notes:
            parts += ["## Warnings", "", *(f"- {n}" for n in report.notes), ""]
        return "\n".join(parts)


SECTION = Overview()
