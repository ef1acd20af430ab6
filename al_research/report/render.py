"""The report's outputs, each made by going through `sections.SECTIONS`: summary.md, the CSV
files, the plots, the tables printed at the end of a sweep, and the console summary."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

from al_research.report.arms import TEST_SELECTED_MARK
from al_research.report.section import Report, Section
from al_research.report.sections import SECTIONS


def applying(report: Report) -> list[Section]:
    """The sections this report has, in order."""
    return [s for s in SECTIONS if s.applies(report)]


def render_markdown(report: Report) -> str:
    """summary.md: each section's part, in order."""
    return "\n".join(text for s in applying(report) if (text := s.markdown(report)))


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def write_csvs(report: Report, out: Path) -> list[Path]:
    written = []
    for section in applying(report):
        for name, (header, rows) in section.csvs(report).items():
            _write_csv(out / name, header, rows)
            written.append(out / name)
    return written


def write_figures(report: Report, out: Path) -> list[Path]:
    return [path for section in applying(report) for path in section.figures(report, out)]


def write_outputs(report: Report, out: Path) -> list[Path]:
    """summary.md, the CSV files and the plots in `out`; every file in it."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(render_markdown(report))
    write_csvs(report, out)
    write_figures(report, out)
    return sorted(p for p in out.iterdir() if p.is_file())


def main_tables(report: Report) -> str:
    """What the console shows for every report: each section's main table (arms, comparisons,
    the article, attribution), then a line on runs that early-stopped on the test set."""
    tables = [t for s in applying(report) if (t := s.main_table(report)) is not None]
    if report.test_selected_runs:
        tables.append(f"{report.test_selected_runs} run(s) early-stopped on the test set: "
                      f"marked{TEST_SELECTED_MARK}, optimistic.")
    return "\n\n".join(tables)


def console_summary(report: Report) -> str:
    lines = ["Runs found per arm:"]
    lines += [f"  {a.label}: {len(a.runs)} (seeds {', '.join(a.seeds)})" for a in report.arms]
    lines += [f"Report: {report.out_dir}/summary.md"]
    if report.summary_run_id:
        lines.append(f"Summary run: {report.summary_run_id} (tag summary=true)")
    lines += ["", main_tables(report)]
    return "\n".join(lines)
