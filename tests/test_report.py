"""The seed-averaged report, on runs the harness itself wrote to a real temporary MLflow store."""

from __future__ import annotations

import csv
import itertools
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
SELF_TRAINING = ["stages.self_training.enabled=true",
                 "stages.self_training.strategies=[least_confident]",
                 "stages.self_training.params.max_rounds=2"]
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
    from al_research.experiment.runner import run

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


def test_prediction_interval_verdict_where_the_ci_and_the_pi_disagree() -> None:
    ours = [0.83, 0.84, 0.845]  # mean 0.8383, s 0.00764: CI [0.8194, 0.8573]
    mean, s = np.mean(ours), np.std(ours, ddof=1)
    half = stats.t.ppf(0.975, 2) * s * math.sqrt(1 + 1 / 3)  # one more run: sqrt(1 + 1/n)
    assert rp.prediction_interval(ours) == pytest.approx((mean - half, mean + half))
    assert rp.prediction_interval(ours) == pytest.approx((0.80039, 0.87628), abs=1e-5)
    # one published run at 0.87: outside the CI of our mean, inside what one run of ours can give
    assert rp.t_estimate(ours).contains(0.87) is False
    assert rp.verdict(ours, 0.87) == "inside our 95% PI"
    assert rp.verdict(ours, 0.8375) == "inside our 95% PI"
    assert rp.verdict(ours, 0.88) == "above our 95% PI"
    assert rp.verdict(ours, 0.79) == "below our 95% PI"
    assert rp.verdict([0.8375], 0.8375) == "n=1: no interval"
    assert rp.verdict([], 0.8375) == "no runs"


def test_holm_step_down() -> None:
    adjusted = rp.holm([0.01, 0.04, 0.03, math.nan])  # m=3: 0.03, then max(0.06, 0.04)
    assert adjusted[:3] == pytest.approx([0.03, 0.06, 0.06]) and math.isnan(adjusted[3])
    assert rp.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_wilcoxon_exact_without_ties_and_named_with_ties() -> None:
    # |d| ranks 2, 4, 5, 1, 3; the one negative has rank 1: W- = 1. Of the 2^5 sign patterns two
    # give W- <= 1 (0 and 1), so the exact two-sided p is 2 * 2/32.
    test = rp.wilcoxon_test([0.01, 0.02, 0.03, -0.005, 0.015])
    assert (test.p, test.method, test.n) == (pytest.approx(0.125), "exact", 5)
    assert "smallest possible p is 0.0625" in test.note and "cannot reach 0.05" in test.note
    six = rp.wilcoxon_test([0.01, 0.02, 0.03, -0.005, 0.015, 0.04])
    assert six.p == pytest.approx(2 * 2 / 64) and six.note == ""  # n=6 can reach 0.05
    # accuracy differences on 400 images: 0.0025 steps with float noise still count as ties
    d = [0.8425 - 0.84, 0.8375 - 0.835, 0.85 - 0.845, 0.83 - 0.8325, 0.8575 - 0.85,
         0.86 - 0.85, 0.84 - 0.84]
    test = rp.wilcoxon_test(d)
    assert test.method == "exact permutation (ties)" and test.n == 6
    assert "1 zero difference(s) dropped" in test.note
    # by hand: every sign flip of the (mid)ranks, two-sided = 2 * the smaller tail, at most 1
    nonzero = np.round([x for x in d if abs(x) > 1e-12], 10)
    ranks = stats.rankdata(np.abs(nonzero))
    observed = ranks[nonzero > 0].sum()
    flips = [sum(r for r, sign in zip(ranks, signs, strict=True) if sign)
             for signs in itertools.product([0, 1], repeat=len(ranks))]
    flips = np.array(flips)
    tails = (np.mean(flips <= observed + 1e-9), np.mean(flips >= observed - 1e-9))
    assert test.p == pytest.approx(min(1.0, 2 * min(tails)))
    assert math.isnan(rp.wilcoxon_test([0.0, 0.0, 0.0]).p)
    assert "zero" in rp.wilcoxon_test([0.0, 0.0, 0.0]).note
    assert "1 paired" in rp.wilcoxon_test([0.01]).note
    many = rp.wilcoxon_test(np.linspace(-0.01, 0.05, 60) + 0.0001)
    assert many.method == "normal approximation (n > 50)"


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
    row = next(c for c in rp.comparisons(main_report) if c.arm == "least_confident")
    assert row.seeds == ["0", "1", "2"] and row.baseline == "random"
    assert (row.difference.mean, row.difference.low, row.difference.high) == pytest.approx(
        (mean, low, high), abs=1e-9)
    assert (row.wins, row.ties, row.losses) == (
        sum(d > 1e-9 for d in diffs), sum(abs(d) <= 1e-9 for d in diffs),
        sum(d < -1e-9 for d in diffs))
    rounded = np.round(diffs, 10)  # 0.0025 steps: float noise must not hide ties
    expected_p = math.nan if not rounded.any() else stats.wilcoxon(rounded).pvalue
    assert row.p == pytest.approx(expected_p, nan_ok=True)
    assert row.test.method in ("exact", "exact permutation (ties)", "")
    # self-training is compared too, and Holm adjusts across both rows
    st_final = finals(store, MAIN, "self_training/final_test_accuracy")["least_confident"]
    st_row = next(c for c in rp.comparisons(main_report) if c.arm.endswith("self-training"))
    fresh_row = next(c for c in rp.comparisons(main_report) if c.arm.endswith("(fresh model)"))
    st_diffs = [st_final[s] - final["random"][s] for s in ("0", "1", "2")]
    assert st_row.difference.mean == pytest.approx(np.mean(st_diffs), abs=1e-9)
    fresh = finals(store, MAIN, "fresh_test_accuracy")
    fresh_diffs = [fresh["least_confident"][s] - fresh["random"][s] for s in ("0", "1", "2")]
    assert fresh_row.difference.mean == pytest.approx(np.mean(fresh_diffs), abs=1e-9)
    rows = (row, st_row, fresh_row)
    finite = sorted(c.p for c in rows if math.isfinite(c.p))  # Holm, by hand
    expected, running = [], 0.0
    for rank, p in enumerate(finite):
        running = max(running, min(1.0, (len(finite) - rank) * p))
        expected.append(running)
    assert sorted(c.p_holm for c in rows if math.isfinite(c.p_holm)) == pytest.approx(expected)
    summary = next(s for s in rp.summaries(main_report) if s.arm == "random")
    assert summary.n_runs == 3
    assert summary.final.mean == pytest.approx(np.mean(list(final["random"].values())))
    mean_curve = [np.mean([histories(store, MAIN)["random"][s][step] for s in "012"])
                  for step in (10, 20, 30)]
    expected = next((step for step, m in zip((10, 20, 30), mean_curve, strict=True)
                     if m >= 0.5), None)
    assert summary.labels_to_target == expected
    # per seed: each seed's first count at or above the target, over the seeds that reached it
    firsts = [next((step for step in (10, 20, 30)
                    if histories(store, MAIN)["random"][s][step] >= 0.5), None) for s in "012"]
    reached = [f for f in firsts if f is not None]
    assert summary.reached == len(reached)
    if reached:
        assert summary.labels_to_target_runs.mean == pytest.approx(np.mean(reached))
    if len(reached) > 1 and len(set(reached)) > 1:
        assert (summary.labels_to_target_runs.low, summary.labels_to_target_runs.high) == \
            pytest.approx(hand_interval(reached)[1:])
    assert summary.fresh.mean == pytest.approx(np.mean(list(fresh["random"].values())))
    # every Wilcoxon here has 3 pairs (smallest p 0.25): the report says none can reach 0.05
    assert all("cannot reach 0.05" in c.note for c in rows if c.test.n == 3)
    assert len(finite) < 2 or any(
        n.startswith(f"Holm over {len(finite)} comparisons") and "no comparison can reach 0.05"
        in n for n in main_report.notes), main_report.notes
    assert all("seeds do not pair" not in n for n in main_report.notes)
    comparison = read_csv(main_report.out_dir / "comparison.csv")
    assert [r["arm"] for r in comparison] == ["least_confident",
                                              "least_confident + self-training",
                                              "least_confident (fresh model)"]
    assert "cannot reach 0.05" in comparison[0]["note"]


def test_article_table_is_computed_from_the_runs(store: Store, main_report: rp.Report) -> None:
    rows = {r.line: r for r in rp.article_rows(main_report)}
    assert list(rows) == ["4000 samples", "400 random samples", "400 active learned samples",
                          "+ auto-labeling"]
    random_row = rows["400 random samples"]
    assert random_row.ours == "30 random samples"  # named by the labelled count found
    mean, low, high = hand_interval(list(finals(store, MAIN)["random"].values()))
    assert (random_row.estimate.mean, random_row.estimate.low, random_row.estimate.high) == \
        pytest.approx((mean, low, high), abs=1e-9)
    values = list(finals(store, MAIN)["random"].values())
    half = stats.t.ppf(0.975, 2) * np.std(values, ddof=1) * math.sqrt(1 + 1 / 3)
    assert random_row.prediction == pytest.approx((mean - half, mean + half), abs=1e-9)
    assert random_row.verdict == ("inside our 95% PI" if abs(0.8375 - mean) <= half else
                                  "above our 95% PI" if 0.8375 > mean else "below our 95% PI")
    assert random_row.at_or_above == sum(v >= 0.8375 for v in values)
    st = list(finals(store, MAIN, "self_training/final_test_accuracy")["least_confident"].values())
    assert rows["+ auto-labeling"].estimate.mean == pytest.approx(np.mean(st), abs=1e-9)
    assert rows["4000 samples"].ours == "500 samples (ground truth)"
    assert rows["4000 samples"].verdict == "n=1: no interval"  # one ground-truth run
    text = (main_report.out_dir / "summary.md").read_text()
    assert "## The article's table" in text and "30 active learned samples" in text
    # the caption's test-set size is the runs' own (data.test_size, 400 in mnist_5k)
    assert "; one test image of 400 is 0.0025\n" in text


def test_unpaired_seeds_warn_and_are_left_out(store: Store, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="al_research.report"):
        report = rp.generate_report(store.uri, EXPERIMENT, None, tmp_path, log_run=False)
    assert report.factors.keys == []  # two sweeps, one configuration per strategy
    assert {a.name: len(a.runs) for a in report.arms} == {
        "random": 4, "least_confident": 3, "full": 1}
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("least_confident" in m and "seed(s) 3" in m for m in warned), warned
    row = next(c for c in rp.comparisons(report) if c.arm == "least_confident")
    assert row.seeds == ["0", "1", "2"] and "1 unpaired" in row.note
    assert "seeds do not pair" in (tmp_path / "summary.md").read_text()


def test_a_single_run_gives_no_interval_not_a_crash(store: Store, tmp_path: Path) -> None:
    report = rp.generate_report(store.uri, EXPERIMENT, EXTRA, tmp_path, log_run=False)
    assert [(a.name, len(a.runs)) for a in report.arms] == [("random", 1)]
    rows = read_csv(tmp_path / "learning_curves.csv")
    assert {r["n"] for r in rows} == {"1"} and all(r["ci_low"] == "nan" for r in rows)
    assert rp.comparisons(report) == []
    verdicts = {r.line: r.verdict for r in rp.article_rows(report)}
    assert "cannot reach" not in " ".join(report.notes)  # no test at all, no such note
    assert verdicts == {"4000 samples": "no runs", "400 random samples": "n=1: no interval",
                        "400 active learned samples": "no runs", "+ auto-labeling": "no runs"}
    assert "(n=1, no CI)" in (tmp_path / "summary.md").read_text()
    assert (tmp_path / "learning_curves.png").stat().st_size > 0


def test_latest_sweep_is_the_newest_runs_sweep(store: Store, tmp_path: Path) -> None:
    report = rp.generate_report(store.uri, EXPERIMENT, "latest", tmp_path, log_run=False)
    assert report.selection.sweep == EXTRA  # written last by the fixture


def test_summary_run_is_logged_and_updated_in_place(store: Store, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    args = ["--experiment", EXPERIMENT, "--sweep", MAIN, "--tracking-uri", store.uri]
    assert rp.main([*args, "--out", str(tmp_path / "first")]) == 0
    printed = capsys.readouterr().out
    assert "400 active learned samples" in printed and "random: 3" in printed
    (first,) = store.runs(MAIN, summary=True)
    assert rp.main([*args, "--out", str(tmp_path / "again")]) == 0  # summaries are not inputs
    (latest,) = store.runs(MAIN, summary=True)  # updated in place: never another, never deleted
    client = store.client()
    assert latest.info.run_id == first.info.run_id
    assert client.get_run(first.info.run_id).info.lifecycle_stage == "active"
    steps = [m.step for m in client.get_metric_history(latest.info.run_id,
                                                       "mean_test_accuracy/random")]
    assert steps and len(steps) == len(set(steps))  # no point logged twice
    assert latest.info.run_name == f"summary-{MAIN}"
    assert latest.data.tags["sweep"] == MAIN and latest.data.params["runs"] == "7"
    assert latest.data.tags["test_selected"] == "false"
    names = {f.path for f in client.list_artifacts(latest.info.run_id, "report")}
    assert {"report/summary.md", "report/learning_curves.csv", "report/comparison.csv",
            "report/learning_curves.png", "report/difference_from_random.png"} <= names
    random_final = np.mean(list(finals(store, MAIN)["random"].values()))
    assert latest.data.metrics["random/final_test_accuracy_mean"] == pytest.approx(random_final)
    assert "\n| random | 3 | 0, 1, 2 | 30 |" in (tmp_path / "first" / "summary.md").read_text()


def test_by_hand_on_a_sweep_dir_writes_into_its_report_folder(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / MAIN).mkdir()  # the sweep tag names a folder here, as a Hydra sweep dir does
    assert rp.main(["--sweep", MAIN, "--tracking-uri", store.uri, "--no-log"]) == 0
    assert (tmp_path / MAIN / "report" / "summary.md").is_file()
    assert not (tmp_path / "reports").exists()
    assert "| least_confident | 3 | 0, 1, 2 |" in capsys.readouterr().out  # the main table


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


def test_a_sweep_report_counts_the_runs_it_reused(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A sweep run again skips finished configurations; its report still has them."""
    from al_research.experiment.runner import run
    from al_research.sweeps.resume import skip_if_finished

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    common = [*SHORT, f"tracking.uri={uri}", f"tracking.experiment_name={EXPERIMENT}"]
    earlier = compose(["strategy=least_confident", *common, "+tracking.tags.sweep=earlier"])
    run(earlier)
    run(compose(["strategy=random", *common, "+tracking.tags.sweep=later"]))
    skipped = skip_if_finished(earlier, uri, EXPERIMENT, sweep="later", job_num=1)
    assert skipped is not None  # the later sweep reused the earlier least-confident run
    report = rp.generate_report(uri, EXPERIMENT, "later", tmp_path / "out", log_run=False)
    assert {a.name: a.seeds for a in report.arms} == {"random": ["0"],
                                                      "least_confident": ["0"]}
    assert report.selection.sweep == "later"
    assert [c.seeds for c in rp.comparisons(report)
            if c.metric == "final_test_accuracy"] == [["0"]]


def test_keys_implied_by_a_group_choice_do_not_name_arms():
    from al_research.report.arms import arm_name, implied_by_choice

    configs = [{"model.name": "softmax", "model.lr": "0.1", "seed": "0"},
               {"model.name": "mlp", "model.lr": "0.01", "seed": "0"},
               {"model.name": "mlp", "model.lr": "0.01", "seed": "1"}]
    assert implied_by_choice(["model.name", "model.lr"], configs) == ["model.lr"]
    configs.append({"model.name": "mlp", "model.lr": "0.001", "seed": "2"})  # swept within mlp
    assert implied_by_choice(["model.name", "model.lr"], configs) == []
    assert arm_name("margin", {"model.name": "softmax", "model.lr": "0.1"}) == \
        "margin · model=softmax · model.lr=0.1"


def test_ranking_is_the_mean_per_seed_rank_within_the_configuration(
        store: Store, main_report: rp.Report) -> None:
    from al_research.report.sections.ranking import ranking_table

    final = finals(store, MAIN)
    rows = {r.arm: r for r in ranking_table(main_report.arms)}
    assert set(rows) == {"random", "least_confident"}
    seeds = ("0", "1", "2")
    # two arms: on each seed the better one ranks 1, the other 2, a tie 1.5 each
    expected = np.mean([1.0 if final["least_confident"][s] > final["random"][s] else
                        1.5 if final["least_confident"][s] == final["random"][s] else 2.0
                        for s in seeds])
    assert rows["least_confident"].rank_final == pytest.approx(expected)
    assert rows["least_confident"].rank_final + rows["random"].rank_final == pytest.approx(3.0)
    assert rows["random"].seeds == 3
    written = {r["arm"]: r for r in read_csv(main_report.out_dir / "ranking.csv")}
    assert set(written) == set(rows)
    assert float(written["least_confident"]["mean_rank_final"]) == pytest.approx(expected)
    assert written["random"]["configuration"] == "reference"


def test_small_multiples_draw_one_panel_per_arm(main_report: rp.Report, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    from al_research.report.sections import comparison

    assert comparison.plot_small_multiples(main_report, tmp_path / "few.png") is None  # 1 arm
    assert not (tmp_path / "few.png").exists()
    monkeypatch.setattr(comparison, "SMALL_MULTIPLES_FROM", 1)
    title = comparison.plot_small_multiples(main_report, tmp_path / "one.png")
    assert title and "random arm" in title
    with Image.open(tmp_path / "one.png") as image:  # one panel: a single column
        assert image.size[0] < 500
