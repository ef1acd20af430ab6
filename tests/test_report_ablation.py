"""Arms as configurations, the attribution table and test-selected flags, on real short runs."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import al_research  # noqa: F401  (quiet TF, one BLAS thread, before anything imports them)
from al_research import report as rp
from al_research.report.sections.attribution import attribution_markdown
from al_research.report.sections.comparison import comparison_table, plot_differences
from al_research.report.sections.curves import curve_table, plot_learning_curves
from al_research.report.sections.per_arm import summary_table
from tests.conftest import CONF_DIR, SHORT, compose, experiment_runs, run_cli

EXPERIMENT = "ablation-test"
SWEEP = "ablation-sweep"
SEEDS = ("0", "1", "2")
WARM, MONITOR = "model.warm_start", "model.early_stopping.monitor"
# the reference configuration and two factors, each flipped alone (one factor at a time)
CONFIGS = {(): [], ((WARM, "false"),): [f"{WARM}=false"],
           ((MONITOR, "test"),): [f"{MONITOR}=test"]}
COMMON = [*SHORT, "data.val_size=100", "stages.self_training.enabled=true",
          "stages.self_training.strategies=[least_confident]",
          "stages.self_training.params.max_rounds=2",
          f"tracking.experiment_name={EXPERIMENT}", f"+tracking.tags.sweep={SWEEP}",
          "+tracking.tags.protocol=article"]


@dataclass
class Sweep:
    uri: str
    report: rp.Report

    def finals(self, metric: str = "final_test_accuracy") -> dict:
        """(configuration, strategy) -> seed -> metric, read back from MLflow."""
        _, runs = experiment_runs(self.uri, EXPERIMENT)
        out: dict = {}
        for r in runs:
            p = r.data.params
            config = tuple((k, v) for k, v in ((MONITOR, p[MONITOR]),
                                                (WARM, p[WARM].lower()))
                           if v not in ("val", "true"))
            if metric in r.data.metrics:
                out.setdefault((config, r.data.tags["strategy"]), {})[r.data.tags["seed"]] = \
                    r.data.metrics[metric]
        return out


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    """18 short runs: random and least-confident, 3 seeds, in 3 configurations."""
    from al_research.experiment.runner import run

    root = tmp_path_factory.mktemp("ablation-store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        for overrides in CONFIGS.values():
            for strategy in ("random", "least_confident"):
                for seed in SEEDS:
                    run(compose([f"strategy={strategy}", f"seed={seed}", *COMMON, *overrides,
                                 f"tracking.uri={uri}"]))
        report = rp.generate_report(uri, EXPERIMENT, SWEEP, root / "report", target=0.5)
    return Sweep(uri, report)


def name(strategy: str, config: tuple) -> str:
    return " · ".join([strategy, *(f"{k}={v}" for k, v in config)])


def test_arms_are_configurations_paired_within_each(sweep: Sweep) -> None:
    report = sweep.report
    assert report.factors.reference == {MONITOR: "val", WARM: "true"}
    expected = {name(s, c) for c in CONFIGS for s in ("random", "least_confident")}
    assert {a.name for a in report.arms} == expected  # six arms, nothing merged
    assert all(a.seeds == list(SEEDS) for a in report.arms)
    finals = sweep.finals()
    for config in CONFIGS:
        row = next(c for c in rp.comparisons(report)
                   if c.arm.startswith(name("least_confident", config))
                   and c.metric == "final_test_accuracy")
        assert row.baseline.startswith(name("random", config))  # same configuration
        diffs = [finals[(config, "least_confident")][s] - finals[(config, "random")][s]
                 for s in SEEDS]
        assert row.seeds == list(SEEDS)
        assert row.difference.mean == pytest.approx(np.mean(diffs), abs=1e-12)
    summaries = {s.arm: s for s in rp.summaries(report)}
    assert summaries["random"].validation_labels == "100"
    assert summaries[name("random", ((MONITOR, "test"),)) + " [test-selected]"] \
        .validation_labels == "100 (unused: stops on test)"


def test_attribution_has_one_row_per_factor_with_finite_intervals(sweep: Sweep) -> None:
    (attribution,) = rp.attributions(sweep.report)
    assert attribution.strategy == "least_confident"
    assert [r.change for r in attribution.rows] == [f"{MONITOR}=test", f"{WARM}=false"]
    finals = sweep.finals()
    st = sweep.finals("self_training/final_test_accuracy")
    ref = ()
    for row in attribution.rows:
        config = tuple(row.deviations.items())
        for effect in (row.active, row.random, row.gap, row.active_self_training):
            assert effect is not None and effect.n == 3
            assert all(math.isfinite(v) for v in (effect.mean, effect.low, effect.high))
            assert effect.low <= effect.mean <= effect.high
        lc = [finals[(config, "least_confident")][s] - finals[(ref, "least_confident")][s]
              for s in SEEDS]
        rnd = [finals[(config, "random")][s] - finals[(ref, "random")][s] for s in SEEDS]
        assert row.active.mean == pytest.approx(np.mean(lc), abs=1e-12)
        assert row.random.mean == pytest.approx(np.mean(rnd), abs=1e-12)
        assert row.gap.mean == pytest.approx(np.mean(lc) - np.mean(rnd), abs=1e-12)
        st_diff = [st[(config, "least_confident")][s] - st[(ref, "least_confident")][s]
                   for s in SEEDS]
        assert row.active_self_training.mean == pytest.approx(np.mean(st_diff), abs=1e-12)
        assert row.ground_truth is None  # no ground-truth arm in this sweep
        # the share of the distance between the article's figure and ours it explains
        distance = 0.8375 - np.mean(list(finals[(ref, "random")].values()))
        assert attribution.distances["400 random samples"] == pytest.approx(distance)
        share = row.explains["400 random samples"]
        assert share.mean == pytest.approx(np.mean(rnd) / distance)
        assert share.low <= share.mean <= share.high
        assert "4000 samples" not in row.explains
    csv_rows = list(csv.DictReader((sweep.report.out_dir / "attribution.csv").open()))
    assert {r["configuration"] for r in csv_rows} == {f"{MONITOR}=test", f"{WARM}=false"}
    text = (sweep.report.out_dir / "summary.md").read_text()
    assert "## Attribution: what each factor changes (least_confident)" in text


def test_test_selected_runs_are_flagged_everywhere(sweep: Sweep, tmp_path: Path) -> None:
    report = sweep.report
    flagged = {a.name for a in report.arms if a.test_selected}
    assert flagged == {name(s, ((MONITOR, "test"),)) for s in ("random", "least_confident")}
    assert report.test_selected_runs == 6
    mark = "[test-selected]"
    tables = {"arms": summary_table(report), "curves": curve_table(report),
              "comparison": comparison_table(report),
              "article": rp.article_markdown(rp.article_rows(report)),
              "attribution": attribution_markdown(rp.attributions(report)[0])}
    for table_name, table in tables.items():
        marked = [line for line in table.splitlines() if mark in line]
        assert marked, table_name
        assert all("test" in line for line in marked)  # only the test-selected arms' rows
        unflagged = [line for line in table.splitlines()
                     if line.startswith("| random |") or line.startswith("| least_confident |")]
        assert all(mark not in line for line in unflagged), table_name
    assert all(mark in r.ours for r in rp.article_rows(report) if r.test_selected)
    assert any(r.test_selected for r in rp.article_rows(report))
    text = (report.out_dir / "summary.md").read_text()
    assert "**6 run(s) early-stopped on the test set**" in text
    curves = list(csv.DictReader((report.out_dir / "learning_curves.csv").open()))
    assert {r["arm"] for r in curves if r["test_selected"] == "True"} == flagged
    for plot in (plot_learning_curves, plot_differences):
        assert "6 run(s) TEST-SELECTED" in plot(report, tmp_path / "plot.png")
    _, runs = experiment_runs(sweep.uri, EXPERIMENT)
    from mlflow import MlflowClient

    summary = MlflowClient(sweep.uri).get_run(report.summary_run_id)
    assert summary.data.tags["test_selected"] == "true"
    assert summary.data.metrics["test_selected_runs"] == 6
    assert summary.data.tags["summary"] == "true" and summary.info.run_id not in {
        r.info.run_id for r in runs}


def test_article_ablation_flips_one_factor_per_configuration() -> None:
    """The sweep's configurations, composed as its jobs compose them."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from al_research.config import flatten

    options = sorted(p.stem for p in (CONF_DIR / "ablation").glob("*.yaml"))
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=["experiment=article_ablation"],
                            return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert sorted(params["+ablation"].split(",")) == options
    assert params["strategy"] == "random,least_confident" and params["seed"] == "range(0,20)"
    assert cfg.hydra.mode.name == "MULTIRUN"

    def config(option: str) -> dict:
        return flatten(compose(["experiment=article_ablation", f"+ablation={option}"]))

    honest = config("honest")
    FIRST = {"initial._target_": "al_research.strategies.initial.FirstItems",  # noqa: N806
             "initial.name": "first"}
    assert (honest[WARM], honest[MONITOR], honest["initial.name"],
            honest["stages.self_training.params.max_rounds"]) == (True, "val", "random", 40)
    changed = {o: {k: v for k, v in config(o).items() if honest.get(k) != v} for o in options}
    assert changed == {
        "honest": {}, "cold_start": {WARM: False}, "test_stopping": {MONITOR: "test"},
        "first_initial": FIRST, "self_training_whole_pool": {
            "stages.self_training.params.max_rounds": None},
        "article": {MONITOR: "test", **FIRST, "stages.self_training.params.max_rounds": None}}


@pytest.mark.slow
def test_a_two_level_sweep_on_the_command_line_pairs_within_each_level(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", "strategy=random,least_confident", f"{WARM}=true,false",
                      "seed=0,1", *SHORT, f"tracking.uri={uri}", f"hydra.sweep.dir={sweep}"],
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    # the sweep-end report printed its main table: four arms, two per level of the one key
    for arm in ("random", "least_confident", f"random · {WARM}=false",
                f"least_confident · {WARM}=false"):
        assert f"\n| {arm} | 2 | 0, 1 |" in out, arm
    _, runs = experiment_runs(uri)
    finals = {(r.data.tags["strategy"], r.data.params[WARM], r.data.tags["seed"]):
              r.data.metrics["final_test_accuracy"] for r in runs}
    report = rp.generate_report(uri, "al-research", str(sweep), tmp_path / "again",
                                log_run=False)
    for warm, arm in (("True", "least_confident"), ("False", f"least_confident · {WARM}=false")):
        row = next(c for c in rp.comparisons(report) if c.arm == arm)
        diffs = [finals[("least_confident", warm, s)] - finals[("random", warm, s)]
                 for s in ("0", "1")]
        assert row.seeds == ["0", "1"]
        assert row.difference.mean == pytest.approx(np.mean(diffs), abs=1e-12)
    (attribution,) = rp.attributions(report)
    assert [r.change for r in attribution.rows] == [f"{WARM}=false"]
    assert (sweep / "report" / "summary.md").is_file()


def test_arm_keys_reference_values_and_duplicates() -> None:
    """Grouping alone, on hand-made records: what splits arms, what does not, what duplicates."""
    from al_research.report.arms import assign_arms, deduplicate
    from al_research.report.runs import RunRecord

    def record(i: int, strategy: str, seed: int, job: int, **params: str) -> RunRecord:
        base = {"seed": str(seed), "strategy.name": strategy, "budget": "30",
                WARM: "True", "runtime.tf_threads": str(i % 2), "rerun": "False",
                "tracking.uri": f"sqlite:///{i}.db", "model._target_": "a.B"}
        tags = {"strategy": strategy, "seed": str(seed), "job_num": str(job)}
        return RunRecord(f"run{i}", f"run{i}", "1", i, tags, {10: 0.5}, 0.5, None,
                         params={**base, **params})

    records = [record(0, "random", 0, 0, **{WARM: "False"}),
               record(1, "random", 0, 1),
               record(2, "least_confident", 0, 2, **{WARM: "False"}),
               record(3, "least_confident", 0, 3),
               record(4, "least_confident", 0, 4, **{"strategy.params.k": "2"}),
               record(5, "least_confident", 0, 5, **{WARM: "False", "rerun": "True"})]  # as 2
    factors = assign_arms(records)
    # runtime, tracking, rerun and _target_ never split arms; a strategy's own key does
    assert factors.keys == [WARM, "strategy.params.k"]
    # warm_start: a tie (3 runs each) goes to the value of the lowest job number
    assert factors.reference == {WARM: "false", "strategy.params.k": "(absent)"}
    assert [r.arm for r in records] == [
        "random", f"random · {WARM}=true", "least_confident", f"least_confident · {WARM}=true",
        f"least_confident · {WARM}=true · strategy.params.k=2", "least_confident"]
    kept, notes = deduplicate(records)
    assert len(kept) == 5 and "run5" in {r.run_id for r in kept}  # the newest of the two
    (note,) = notes
    assert note.startswith("duplicate runs: least_confident has") and "ignoring run2" in note
