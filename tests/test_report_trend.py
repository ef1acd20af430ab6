"""The report's "Along <factor>" section on hand-made runs of a batch-size sweep: each strategy's
gain over random at every batch size, paired by seed, and its change from the smallest batch;
which strategies degrade and which hold; its CSV and plot; no section when no numeric factor
varies."""

from __future__ import annotations

import csv

import pytest

import al_research  # noqa: F401  (quiet TF, one BLAS thread, before anything imports them)
from al_research import report as rp
from al_research.report.sections import trend

# final accuracies per (strategy, batch size), one per seed 0..2
FINALS = {
    ("random", "10"): [0.80, 0.82, 0.84],
    ("random", "50"): [0.79, 0.81, 0.83],
    ("random", "200"): [0.78, 0.80, 0.82],
    # top-k: +5 points at 10, +1 at 200 (degrades)
    ("least_confident", "10"): [0.85, 0.87, 0.89],
    ("least_confident", "50"): [0.82, 0.84, 0.87],
    ("least_confident", "200"): [0.79, 0.81, 0.83],
    # batch-aware: +4 points everywhere, give or take (holds)
    ("batchbald", "10"): [0.84, 0.86, 0.88],
    ("batchbald", "50"): [0.83, 0.86, 0.87],
    ("batchbald", "200"): [0.82, 0.84, 0.86],
}


def _record(i: int, strategy: str, batch: str, seed: int, final: float,
            model: str = "mlp") -> rp.RunRecord:
    tags = {"strategy": strategy, "seed": str(seed), "job_num": str(i), "ground_truth": "false"}
    params = {"seed": str(seed), "strategy.name": strategy, "batch_size": batch,
              "budget": "1000", "model.name": model}
    return rp.RunRecord(f"r{i}", f"r{i}", "1", i, tags, {10: 0.5, 1000: final}, final, None,
                        params=params)


def _records(models=("mlp",)) -> list[rp.RunRecord]:
    out = []
    for model in models:
        for (strategy, batch), finals in FINALS.items():
            for seed, final in enumerate(finals):
                out.append(_record(len(out), strategy, batch, seed, final, model))
    return out


def _report(records, tmp_path=None):
    selection = rp.Selection("sqlite:///t.db", "batch-sizes", None, ["1"], {"1": "batch-sizes"})
    report = rp.analyse(selection, records, 0.5, [], rp.assign_arms(records))
    report.out_dir = tmp_path
    return report


def _row(t: trend.Trend, strategy: str, other: str = "") -> trend.TrendRow:
    return next(r for r in t.rows if r.strategy == strategy and r.other == other)


def test_gain_over_random_and_its_change_per_batch_size_paired_by_seed():
    report = _report(_records())
    [t] = report.results["trend"]
    assert (t.factor, t.values) == ("batch_size", ["10", "50", "200"])  # numeric order
    lc = _row(t, "least_confident")
    assert lc.cells["10"].gain.mean == pytest.approx(5.0)
    assert lc.cells["50"].gain.mean == pytest.approx((3 + 3 + 4) / 3)
    assert lc.cells["200"].gain.mean == pytest.approx(1.0)
    assert lc.cells["10"].change is None  # the smallest value is the reference
    assert lc.cells["200"].change.mean == pytest.approx(-4.0)
    assert lc.cells["200"].change.high < 0  # degrades, its interval below 0
    bb = _row(t, "batchbald")
    # gains per seed: (4, 4, 4) points at 10, (4, 5, 4) at 50, (4, 4, 4) at 200
    assert [bb.cells[v].gain.mean for v in ("10", "50", "200")] == pytest.approx(
        [4.0, 13 / 3, 4.0])
    assert bb.cells["200"].change.mean == pytest.approx(0.0)
    random = _row(t, "random")
    assert random.cells["10"].gain.mean == pytest.approx(0.0)
    assert random.cells["10"].accuracy.mean == pytest.approx(0.82)
    holds, degrades = t.verdicts()["200"]
    assert (holds, degrades) == (["batchbald"], ["least_confident"])


def test_markdown_csv_and_plot(tmp_path):
    report = _report(_records(), tmp_path)
    text = trend.SECTION.markdown(report)
    assert "## Along `batch_size`" in text
    assert "gain change 10→200" in text
    assert "`batch_size=200` against `batch_size=10`: degrade: least_confident; hold: batchbald." \
        in text  # random is not judged against itself
    [(name, (header, rows))] = trend.SECTION.csvs(report).items()
    assert name == "trend_batch_size.csv"
    rows = [dict(zip(header, r, strict=True)) for r in rows]
    lc200 = next(r for r in rows if r["strategy"] == "least_confident" and r["value"] == "200")
    assert lc200["gain_change_points_mean"] == pytest.approx(-4.0)
    assert lc200["gain_seeds"] == 3
    [png] = trend.SECTION.figures(report, tmp_path)
    assert png.name == "trend_batch_size.png" and png.stat().st_size > 5000
    path = tmp_path / name
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([header, *([r[h] for h in header] for r in rows)])
    assert path.read_text().count("\n") == 1 + 9


def test_other_factors_keep_their_own_rows_and_random():
    report = _report(_records(models=("mlp", "softmax")))
    [t] = report.results["trend"]
    mlp, softmax = _row(t, "least_confident"), _row(t, "least_confident", "model=softmax")
    assert mlp.cells["200"].change.mean == pytest.approx(-4.0)
    assert softmax.cells["200"].change.mean == pytest.approx(-4.0)  # paired with its random
    assert len(t.rows) == 6


def test_no_section_without_a_numeric_factor():
    records = [r for r in _records() if r.params["batch_size"] == "10"]
    report = _report(records)
    assert report.results["trend"] == []
    assert not trend.SECTION.applies(report)
