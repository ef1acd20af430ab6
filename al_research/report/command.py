"""The report end to end (`generate_report`) and its command line (`main`)."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from al_research.report.analysis import analyse
from al_research.report.arms import assign_arms, deduplicate
from al_research.report.render import console_summary, write_outputs
from al_research.report.runs import (
    CURVE_METRIC,
    ReportError,
    Selection,
    describe,
    read_records,
    select_runs,
)
from al_research.report.section import Report
from al_research.report.summary import log_summary_run
from al_research.tracking import Store, resolve_tracking_uri

log = logging.getLogger(__name__)

DEFAULT_TARGET = 0.85


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.") or "report"


def default_out_dir(selection: Selection) -> Path:
    """The sweep's own `report/` folder when the sweep dir is here, else reports/<name>/."""
    if selection.sweep:
        if Path(selection.sweep).is_dir():
            return Path(selection.sweep) / "report"
        return Path("reports") / slug("_".join(Path(selection.sweep).parts[-2:]))
    return Path("reports") / slug(selection.experiment or "all")


def generate_report(uri: str, experiment: str | None = None, sweep: str | None = None,
                    out_dir: Path | None = None, target: float = DEFAULT_TARGET,
                    log_run: bool = True) -> Report:
    """Select, analyse, write the out folder and (unless `log_run` is false) the summary run."""
    selection, runs = select_runs(uri, experiment, sweep)
    records, notes = read_records(Store(uri), runs)
    if not records:
        raise ReportError(f"no usable run ({len(runs)} found, none with a {CURVE_METRIC} "
                          f"history) for {describe(experiment, selection.sweep, uri)}")
    factors = assign_arms(records)
    records, duplicates = deduplicate(records)
    report = analyse(selection, records, target, [*notes, *duplicates], factors)
    for arm in report.arms:
        log.info("found %d run(s) for %s (seeds %s)", len(arm.runs), arm.label,
                 ", ".join(arm.seeds))
    for note in report.notes:
        log.warning(note)
    report.out_dir = out_dir or default_out_dir(selection)
    files = write_outputs(report, report.out_dir)
    if log_run:
        report.summary_run_id = log_summary_run(report, files)
    return report


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="al-research report",
        description="Seed-averaged comparison of the arms (configurations) of an experiment "
                    "or sweep.")
    parser.add_argument("--experiment", help="MLflow experiment name")
    parser.add_argument("--sweep", help="the runs' `sweep` tag (the Hydra sweep dir), or "
                                        "`latest` for the newest sweep")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
                             "sqlite:///<project root>/mlflow.db)")
    parser.add_argument("--target", type=float, default=DEFAULT_TARGET,
                        help="accuracy target for 'labels to reach' (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: <sweep dir>/report/ when the sweep dir "
                             "exists here, else reports/<sweep or experiment>/)")
    parser.add_argument("--no-log", action="store_true",
                        help="do not create the summary MLflow run (by default it replaces "
                             "the previous summary run of the same sweep or experiment)")
    args = parser.parse_args(argv)
    if not args.experiment and not args.sweep:
        parser.error("give --experiment NAME and/or --sweep SWEEP (or --sweep latest)")
    if not 0.0 < args.target <= 1.0:
        parser.error(f"--target must be in (0, 1], got {args.target}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """`al-research report ...`: 0 on success, 1 when nothing matches."""
    args = parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    uri = resolve_tracking_uri(args.tracking_uri)
    try:
        report = generate_report(uri, args.experiment, args.sweep, args.out, args.target,
                                 log_run=not args.no_log)
    except ReportError as error:
        print(f"al-research report: {error}", file=sys.stderr)
        return 1
    print(console_summary(report))
    return 0
