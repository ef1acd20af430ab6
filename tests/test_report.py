"""The seed-averaged report, on runs the harness itself wrote to a real temporary MLflow store."""

from __future__ import annotations

import csv
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import al_research  # noqa: F401  (quiet TF, one BLAS thread, before anything imports them)
from al_research import report as rp
from tests.conftest import SHORT, compose

EXPERIMENT = "report-test"
MAIN, EXTRA = "sweep-main", "sweep-extra"
SELF_TRAINING = ["self_training.enabled=true", "self_training.strategies=[least_confident]",
                 "self_training.max_rounds=2"]
# (strategy, seed, sweep tag): MAIN pairs seeds 0-2 and has one ground-truth run; EXTRA holds
# one more random run, so the whole experiment has a random seed (3) least_confident lacks.
PLAN = [*((s, seed, MAIN) for s in ("random", "least_confident") for seed in (0, 1, 2)),
        ("full", 0, MAIN), ("random", 3, EXTRA)]


@dataclass
class Store:
    root: Path
    uri: str

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

    def runs(self, sweep: str | None = None, summary: bool = False) -> list:
        client = self.client()
        experiment = client.get_experiment_by_name(EXPERIMENT)
        runs = client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED'")
        return [r for r in runs if (r.data.tags.get("summary") == "true") == summary
                and (sweep is None or r.data.tags.get("sweep") == sweep)]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Eight short runs written by `experiment.run`, the way a sweep's jobs write them."""
    from al_research.experiment import run

    root = tmp_path_factory.mktemp("report-store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # anything MLflow puts in the working dir stays in the temporary folder
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        for strategy, seed, sweep in PLAN:
            run(compose([f"strategy={strategy}", f"seed={seed}", *SHORT, *SELF_TRAINING,
                         f"tracking.uri={uri}", f"tracking.experiment_name={EXPERIMENT}",
                         f"+tracking.tags.sweep={sweep}", "+tracking.tags.protocol=article"]))
    return Store(root, uri)


@pytest.fixture(scope="module")
def main_report(store: Store, tmp_path_factory: pytest.TempPathFactory) -> rp.Report:
    out = tmp_path_factory.mktemp("report-main")
    return rp.generate_report(store.uri, EXPERIMENT, MAIN, out, target=0.5, log_run=False)


def histories(store: Store, sweep: str, metric: str = "test_accuracy") -> dict:
    """strategy -> seed -> {step: value}, read back from MLflow."""
    client = store.client()
    out: dict[str, dict[str, dict[int, float]]] = {}
    for r in store.runs(sweep):
        points = {m.step: m.value for m in client.get_metric_history(r.info.run_id, metric)}
        out.setdefault(r.data.tags["strategy"], {})[r.data.tags["seed"]] = points
    return out


def finals(store: Store, sweep: str, metric: str = "final_test_accuracy") -> dict:
    """strategy -> seed -> the run's metric."""
    out: dict[str, dict[str, float]] = {}
    for r in store.runs(sweep):
        if metric in r.data.metrics:
            out.setdefault(r.data.tags["strategy"], {})[r.data.tags["seed"]] = \
                r.data.metrics[metric]
    return out


def hand_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and the 95% t-interval, written out: mean ± t(0.975, n-1) s / sqrt(n)."""
    n = len(values)
    mean = sum(values) / n
    s = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.975, n - 1) * s / math.sqrt(n)
    return mean, mean - half, mean + half


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


# --- statistics on numbers chosen so the answer is known ---------------------------------------


def test_t_estimate_known_values_and_single_value() -> None:
    e = rp.t_estimate([0.83, 0.84, 0.845])
    assert e.mean == pytest.approx(0.838333, abs=1e-6)
    assert e.std == pytest.approx(0.0076376, abs=1e-6)
    assert (e.low, e.high) == pytest.approx((0.819360, 0.857306), abs=1e-5)  # t(0.975,2)=4.303
    one = rp.t_estimate([0.9])
    assert one.mean == 0.9 and one.n == 1 and math.isnan(one.low) and math.isnan(one.std)
    assert one.text() == "0.9000 (n=1, no CI)"
    same = rp.t_estimate([0.5, 0.5, 0.5])
    assert (same.low, same.high) == (0.5, 0.5)


def test_article_verdict_on_known_intervals() -> None:
    around = rp.t_estimate([0.83, 0.84, 0.845])  # [0.8194, 0.8573]
    below = rp.t_estimate([0.80, 0.801, 0.802])  # [0.7985, 0.8045]
    above = rp.t_estimate([0.95, 0.951, 0.952])
    assert rp.verdict(around, 0.8375) == "inside"
    assert rp.verdict(below, 0.8375) == "outside (article above)"
    assert rp.verdict(above, 0.8375) == "outside (article below)"
    assert rp.verdict(rp.t_estimate([0.8375]), 0.8375) == "n=1: no interval"
    assert rp.verdict(None, 0.8375) == "no runs"


def test_holm_step_down_and_wilcoxon_edge_cases() -> None:
    adjusted = rp.holm([0.01, 0.04, 0.03, math.nan])  # m=3: 0.03, then max(0.06, 0.04)
    assert adjusted[:3] == pytest.approx([0.03, 0.06, 0.06]) and math.isnan(adjusted[3])
    assert rp.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    p, note = rp.wilcoxon_p([0.0, 0.0, 0.0])
    assert math.isnan(p) and "zero" in note
    p, note = rp.wilcoxon_p([0.01])
    assert math.isnan(p) and "1 paired" in note
    d = [0.01, 0.02, 0.03, -0.005, 0.015]
    assert rp.wilcoxon_p(d)[0] == pytest.approx(stats.wilcoxon(d).pvalue)


def test_aulc_is_the_mean_level_of_the_curve() -> None:
    assert rp.normalised_aulc([10, 20, 30], [0.5, 0.5, 0.5]) == pytest.approx(0.5)
    assert rp.normalised_aulc([0, 10, 30], [0.0, 1.0, 1.0]) == pytest.approx(25 / 30)
    assert rp.labels_to_reach([10, 20, 30], [0.4, 0.6, 0.7], 0.6) == 20
    assert rp.labels_to_reach([10, 20, 30], [0.4, 0.6, 0.7], 0.8) is None


# --- the report on real runs -------------------------------------------------------------------


def test_step_mean_and_ci_match_a_hand_computation(store: Store, main_report: rp.Report) -> None:
    curves = histories(store, MAIN)
    rows = read_csv(main_report.out_dir / "learning_curves.csv")
    checked = 0
    for strategy in ("random", "least_confident"):
        by_seed = curves[strategy]
        assert sorted(by_seed) == ["0", "1", "2"]
        for step in (10, 20, 30):
            values = [by_seed[seed][step] for seed in by_seed]
            mean, low, high = hand_interval(values)
            row = next(r for r in rows if r["strategy"] == strategy
                       and int(r["n_labelled"]) == step)
            assert int(row["n"]) == 3
            assert float(row["mean"]) == pytest.approx(mean, abs=1e-9)
            assert float(row["ci_low"]) == pytest.approx(low, abs=1e-9)
            assert float(row["ci_high"]) == pytest.approx(high, abs=1e-9)
            checked += 1
    assert checked == 6
    full = [r for r in rows if r["strategy"] == "full"]
    assert [int(r["n_labelled"]) for r in full] == [500] and full[0]["n"] == "1"


def test_comparison_pairs_by_seed(store: Store, main_report: rp.Report) -> None:
    final = finals(store, MAIN)
    diffs = [final["least_confident"][s] - final["random"][s] for s in ("0", "1", "2")]
    mean, low, high = hand_interval(diffs)
    row = next(c for c in main_report.comparisons if c.arm == "least_confident")
    assert row.seeds == ["0", "1", "2"] and row.baseline == "random"
    assert (row.difference.mean, row.difference.low, row.difference.high) == pytest.approx(
        (mean, low, high), abs=1e-9)
    assert (row.wins, row.ties, row.losses) == (
        sum(d > 1e-9 for d in diffs), sum(abs(d) <= 1e-9 for d in diffs),
        sum(d < -1e-9 for d in diffs))
    expected_p = math.nan if all(abs(d) < 1e-12 for d in diffs) else stats.wilcoxon(diffs).pvalue
    assert row.p == pytest.approx(expected_p, nan_ok=True)
    # self-training is compared too, and Holm adjusts across both rows
    st_final = finals(store, MAIN, "self_training/final_test_accuracy")["least_confident"]
    st_row = next(c for c in main_report.comparisons if c.arm.endswith("self-training"))
    st_diffs = [st_final[s] - final["random"][s] for s in ("0", "1", "2")]
    assert st_row.difference.mean == pytest.approx(np.mean(st_diffs), abs=1e-9)
    finite = sorted(p for p in (row.p, st_row.p) if math.isfinite(p))  # Holm, by hand
    expected = [min(1.0, len(finite) * finite[0])] if finite else []
    if len(finite) == 2:
        expected.append(max(expected[0], finite[1]))
    assert sorted(p for p in (row.p_holm, st_row.p_holm) if math.isfinite(p)) == \
        pytest.approx(expected)
    summary = next(s for s in main_report.summaries if s.arm == "random")
    assert summary.n_runs == 3
    assert summary.final.mean == pytest.approx(np.mean(list(final["random"].values())))
    mean_curve = [np.mean([histories(store, MAIN)["random"][s][step] for s in "012"])
                  for step in (10, 20, 30)]
    expected = next((step for step, m in zip((10, 20, 30), mean_curve, strict=True)
                     if m >= 0.5), None)
    assert summary.labels_to_target == expected
    assert not main_report.notes  # seeds pair in this sweep: no warning
    comparison = read_csv(main_report.out_dir / "comparison.csv")
    assert [r["strategy"] for r in comparison] == ["least_confident",
                                                   "least_confident + self-training"]


def test_article_table_is_computed_from_the_runs(store: Store, main_report: rp.Report) -> None:
    rows = {r.line: r for r in main_report.article}
    assert list(rows) == ["4000 samples", "400 random samples", "400 active learned samples",
                          "+ auto-labeling"]
    random_row = rows["400 random samples"]
    assert random_row.ours == "30 random samples"  # named by the labelled count found
    mean, low, high = hand_interval(list(finals(store, MAIN)["random"].values()))
    assert (random_row.estimate.mean, random_row.estimate.low, random_row.estimate.high) == \
        pytest.approx((mean, low, high), abs=1e-9)
    assert random_row.verdict == ("inside" if low <= 0.8375 <= high else
                                  "outside (article above)" if 0.8375 > high else
                                  "outside (article below)")
    st = list(finals(store, MAIN, "self_training/final_test_accuracy")["least_confident"].values())
    assert rows["+ auto-labeling"].estimate.mean == pytest.approx(np.mean(st), abs=1e-9)
    assert rows["4000 samples"].ours == "500 samples (ground truth)"
    assert rows["4000 samples"].verdict == "n=1: no interval"  # one ground-truth run
    text = (main_report.out_dir / "summary.md").read_text()
    assert "## The article's table" in text and "30 active learned samples" in text


def test_unpaired_seeds_warn_and_are_left_out(store: Store, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="al_research.report"):
        report = rp.generate_report(store.uri, EXPERIMENT, None, tmp_path, log_run=False)
    assert {a.name: len(a.runs) for a in report.arms} == {
        "random": 4, "least_confident": 3, "full": 1}
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("least_confident" in m and "seed(s) 3" in m for m in warned), warned
    row = next(c for c in report.comparisons if c.arm == "least_confident")
    assert row.seeds == ["0", "1", "2"] and "1 unpaired" in row.note
    assert "seeds do not pair" in (tmp_path / "summary.md").read_text()


def test_a_single_run_gives_no_interval_not_a_crash(store: Store, tmp_path: Path) -> None:
    report = rp.generate_report(store.uri, EXPERIMENT, EXTRA, tmp_path, log_run=False)
    assert [(a.name, len(a.runs)) for a in report.arms] == [("random", 1)]
    rows = read_csv(tmp_path / "learning_curves.csv")
    assert {r["n"] for r in rows} == {"1"} and all(r["ci_low"] == "nan" for r in rows)
    assert report.comparisons == []
    verdicts = {r.line: r.verdict for r in report.article}
    assert verdicts == {"4000 samples": "no runs", "400 random samples": "n=1: no interval",
                        "400 active learned samples": "no runs", "+ auto-labeling": "no runs"}
    assert "(n=1, no CI)" in (tmp_path / "summary.md").read_text()
    assert (tmp_path / "learning_curves.png").stat().st_size > 0


def test_latest_sweep_is_the_newest_runs_sweep(store: Store, tmp_path: Path) -> None:
    report = rp.generate_report(store.uri, EXPERIMENT, "latest", tmp_path, log_run=False)
    assert report.selection.sweep == EXTRA  # written last by the fixture


def test_summary_run_is_logged_with_its_artifacts(store: Store, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    args = ["--experiment", EXPERIMENT, "--sweep", MAIN, "--tracking-uri", store.uri]
    assert rp.main([*args, "--out", str(tmp_path / "first")]) == 0
    printed = capsys.readouterr().out
    assert "400 active learned samples" in printed and "random: 3" in printed
    assert rp.main([*args, "--out", str(tmp_path / "again")]) == 0  # summaries are not inputs
    summaries = sorted(store.runs(MAIN, summary=True), key=lambda r: r.info.start_time)
    assert len(summaries) == 2
    first, latest = summaries
    assert latest.info.run_name == f"summary-{MAIN}"
    assert latest.data.tags["sweep"] == MAIN and latest.data.params["runs"] == "7"
    assert first.data.tags["superseded_by"] == latest.info.run_id
    assert "superseded_by" not in latest.data.tags
    client = store.client()
    names = {f.path for f in client.list_artifacts(latest.info.run_id, "report")}
    assert {"report/summary.md", "report/learning_curves.csv", "report/comparison.csv",
            "report/learning_curves.png", "report/difference_from_random.png"} <= names
    random_final = np.mean(list(finals(store, MAIN)["random"].values()))
    assert latest.data.metrics["random/final_test_accuracy_mean"] == pytest.approx(random_final)
    assert "\n| random | 3 | 0, 1, 2 | 30 |" in (tmp_path / "first" / "summary.md").read_text()


def test_nothing_matching_exits_non_zero_naming_the_selection(
        store: Store, capsys: pytest.CaptureFixture) -> None:
    code = rp.main(["--experiment", EXPERIMENT, "--sweep", "no-such-sweep", "--tracking-uri",
                    store.uri, "--no-log"])
    err = capsys.readouterr().err
    assert code == 1
    assert EXPERIMENT in err and "no-such-sweep" in err and store.uri in err


def test_console_script_dispatches_report(store: Store, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from al_research import cli

    monkeypatch.setattr(sys, "argv", ["al-research", "report", "--sweep", MAIN,
                                      "--tracking-uri", store.uri, "--out", str(tmp_path),
                                      "--no-log"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 0
    assert (tmp_path / "summary.md").is_file()
