"""The report's "When to stop" section on hand-made runs: per arm and criterion, the labels each
criterion would have spent and the test accuracy stopping there would have given up, over seeds,
with "never fired" counted and runs that a criterion ended left out of the accuracy given up."""

from __future__ import annotations

import math

import pytest

import al_research  # noqa: F401  (quiet TF, one BLAS thread, before anything imports them)
from al_research import report as rp
from al_research.report.sections import stopping
from al_research.report.stats import t_estimate

CURVE = {10: 0.30, 20: 0.50, 30: 0.60}


def _record(strategy, seed, tags, action="record", curve=None, ground_truth=False):
    curve = dict(curve or CURVE)
    params = {"seed": seed, "strategy.name": strategy, "stopping.action": action}
    all_tags = {"strategy": strategy, "seed": seed,
                "ground_truth": "true" if ground_truth else "false", **tags}
    return rp.RunRecord(f"{strategy}-{action}-{seed}", f"{strategy}-{seed}", "1", 0, all_tags,
                        curve, curve[max(curve)], None, params=params)


def _report(records):
    selection = rp.Selection("sqlite:///stop.db", "stop", None, ["1"], {"1": "stop"})
    return rp.analyse(selection, records, 0.5, [], rp.assign_arms(records))


RECORDS = [
    _record("random", "0", {"stopping.kappa": "20", "stopping.val_plateau": "never"}),
    _record("random", "1", {"stopping.kappa": "30", "stopping.val_plateau": "never"}),
    _record("random", "2", {"stopping.kappa": "never", "stopping.val_plateau": "never"}),
    _record("least_confident", "0", {"stopping.kappa": "10"},
            curve={10: 0.40, 20: 0.55, 30: 0.70}),
    _record("least_confident", "1", {"stopping.kappa": "20"},
            curve={10: 0.35, 20: 0.65, 30: 0.75}),
    # ended by the criterion (stopping.action=stop): its full-budget accuracy is unknown
    _record("least_confident", "0", {"stopping.kappa": "20", "stopped_by": "kappa"}, "stop",
            curve={10: 0.40, 20: 0.55}),
    _record("least_confident", "1", {"stopping.kappa": "20", "stopped_by": "kappa"}, "stop",
            curve={10: 0.35, 20: 0.65}),
    _record("full", "0", {"stopping.kappa": "never"}, curve={500: 0.9}, ground_truth=True),
]


def test_labels_and_accuracy_given_up_per_arm_and_criterion_with_never_counted():
    report = _report(RECORDS)
    rows = {(r.arm, r.criterion): r for r in report.results["stopping"]}
    assert sorted(rows) == [("least_confident", "kappa"),
                            ("least_confident · stopping.action=stop", "kappa"),
                            ("random", "kappa"), ("random", "val_plateau")]  # no ground truth
    kappa = rows[("random", "kappa")]
    assert (kappa.runs, kappa.fired, kappa.measured) == (3, 2, 3)
    assert kappa.labels == t_estimate([20, 30, 30])  # never fired: the whole budget
    assert (kappa.median, kappa.low, kappa.high, kappa.budget) == (30, 20, 30, (30, 30))
    assert kappa.given_up.mean == pytest.approx((-10.0 + 0.0 + 0.0) / 3)  # points
    assert kappa.given_up == t_estimate([(0.5 - 0.6) * 100, 0.0, 0.0])
    plateau = rows[("random", "val_plateau")]
    assert (plateau.fired, plateau.labels.mean, plateau.given_up.mean) == (0, 30, 0.0)
    lc = rows[("least_confident", "kappa")]
    assert lc.labels == t_estimate([10, 20])
    assert lc.given_up.mean == pytest.approx(((0.40 - 0.70) + (0.65 - 0.75)) * 100 / 2)
    stopped = rows[("least_confident · stopping.action=stop", "kappa")]
    assert (stopped.fired, stopped.measured, stopped.labels.mean) == (2, 0, 20)
    assert math.isnan(stopped.given_up.mean)


def test_the_section_renders_only_when_runs_recorded_criteria():
    report = _report(RECORDS)
    markdown = rp.render_markdown(report)
    assert "## When to stop" in markdown
    line = next(s for s in markdown.splitlines() if s.startswith("| random | kappa |"))
    assert line == "| random | kappa | 2/3 | 27 ± 14 | 30 [20–30] | 30 | -3.3 [-17.7, +11.0] |"
    stopped = next(s for s in markdown.splitlines() if "stopping.action=stop | kappa" in s)
    assert "— (ended by the criteria: no full-budget accuracy)" in stopped
    header, rows = stopping.SECTION.csvs(report)["stopping.csv"]
    rows = list(rows)
    assert header[:4] == ["arm", "criterion", "runs", "fired"] and len(rows) == 4
    plain = _report([_record("random", "0", {}), _record("random", "1", {})])
    assert plain.results["stopping"] == []
    assert "When to stop" not in rp.render_markdown(plain)
