"""The real command line: the default experiment, a multirun, and bad overrides."""

import pytest

from tests.conftest import SHORT, experiment_runs, run_cli


@pytest.mark.slow
def test_default_experiment_end_to_end(tmp_path):
    """The README's main job on the embedded data: 40 rounds, the article's range."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_cli([f"tracking.uri={uri}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert out.count("labelled") >= 40 and "round 40  labelled  400" in out
    assert f"mlflow ui --backend-store-uri {uri}" in out
    client, runs = experiment_runs(uri)
    (r,) = runs
    assert (f"http://127.0.0.1:5000/#/experiments/{r.info.experiment_id}/runs/{r.info.run_id}"
            "?workflowType=machine_learning") in out  # the run's page in the Model training view
    assert r.info.status == "FINISHED"
    assert len(r.data.tags["mlflow.source.git.commit"]) == 40  # run from this checkout
    assert r.data.tags["git_dirty"] in ("true", "false")
    assert r.data.tags["mlflow.note.content"] == f"python -m al_research tracking.uri={uri}"
    history = client.get_metric_history(r.info.run_id, "test_accuracy")
    assert sorted(m.step for m in history) == list(range(10, 401, 10))
    assert r.data.metrics["final_test_accuracy"] >= 0.80
    images = [a.path for a in client.list_artifacts(r.info.run_id, "images")]
    pngs = [p for p in images if p.endswith(".png")]
    assert len([p for p in pngs if "confidence_histogram" in p]) == 40
    # least-confident's score is 1 - confidence: the confidence histogram already shows it
    assert not [p for p in pngs if "score_histogram" in p]
    plots = [a.path for a in client.list_artifacts(r.info.run_id, "plots")]
    assert "plots/learning_curve.png" in plots and "plots/histograms.png" in plots
    with open(client.download_artifacts(r.info.run_id, "histograms.csv")) as f:
        assert len(f.read().splitlines()) == 1 + 40  # a row per round: the confidence only
    assert list(tmp_path.glob("outputs/*/*/rounds.csv")), "the job's folder keeps rounds.csv"


@pytest.mark.slow
def test_multirun_lands_every_job_and_reports_at_the_end(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = tmp_path / "sweep"
    histograms_on = [o for o in SHORT if not o.startswith("tracking.histograms")]
    result = run_cli(["-m", "strategy=random,least_confident", "seed=0", *histograms_on,
                      f"tracking.uri={uri}", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[sweep] 2 jobs, 1 at a time" in result.stderr
    assert "[sweep] 1/2 jobs done" in result.stderr and "about" in result.stderr
    assert "[sweep] 2/2 jobs done" in result.stderr
    client, runs = experiment_runs(uri)
    assert sorted(r.data.tags["strategy"] for r in runs) == ["least_confident", "random"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags["sweep"] for r in runs} == {str(sweep)}
    for r in runs:
        assert len(client.get_metric_history(r.info.run_id, "test_accuracy")) == 3
        # a sweep's job logs the rounds' histograms once (counts and a figure), no step images
        top = [a.path for a in client.list_artifacts(r.info.run_id)]
        assert "histograms.csv" in top and "images" not in top
        assert "plots/histograms.png" in [a.path for a in
                                          client.list_artifacts(r.info.run_id, "plots")]
        counts = client.download_artifacts(r.info.run_id, "histograms.csv")
        with open(counts) as f:
            rows = f.read().splitlines()
        assert [row.split(",")[:2] for row in rows[1:]] == [
            ["10", "confidence"], ["20", "confidence"], ["30", "confidence"]]
        assert "mlflow.loggedImages" not in r.data.tags
    assert len(list(sweep.glob("*/.hydra/config.yaml"))) == 2
    # the sweep-end callback wrote the report and its summary run
    summary = sweep / "report" / "summary.md"
    assert summary.is_file(), result.stdout[-3000:]
    text = summary.read_text()
    assert "\n| random | 1 | 0 |" in text and "\n| least_confident | 1 | 0 |" in text
    experiment = client.get_experiment_by_name("al-research")
    summaries = client.search_runs([experiment.experiment_id], "tags.summary = 'true'")
    assert len(summaries) == 1 and summaries[0].data.tags["sweep"] == str(sweep)
    # the sweep is one parent run: its jobs are its children, the report is in its artifacts
    (parent,) = summaries
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name == f"sweep {tmp_path.name}/sweep"
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent.info.run_id}
    jobs = client.search_runs([experiment.experiment_id], "tags.summary != 'true'")
    assert sorted(r.info.run_id for r in jobs) == sorted(r.info.run_id for r in runs)
    report_files = [a.path for a in client.list_artifacts(parent.info.run_id, "report")]
    assert "report/summary.md" in report_files


@pytest.mark.slow
@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("strategy=foo", "least_confident"),
        ("model.lr=abc", "abc"),
        ("batch_size=-1", "batch_size must be >= 1"),
        ("budget=4001", "larger than the pool"),
    ],
)
def test_bad_overrides_fail_cleanly(tmp_path, override, expected):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_cli([override, f"tracking.uri={uri}"], cwd=tmp_path, timeout=120)
    assert result.returncode != 0
    assert expected in result.stderr + result.stdout
    _, runs = experiment_runs(uri)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    assert not runs, "nothing should start before the config is valid"


@pytest.mark.slow
def test_a_sweep_with_a_failed_job_still_reports_what_landed(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = tmp_path / "sweep"
    missing = tmp_path / "absent" / "mnist.npz"
    result = run_cli(["-m", "data=mnist_5k,mnist", *SHORT, f"tracking.uri={uri}",
                      f"hydra.sweep.dir={sweep}"], cwd=tmp_path,
                     env_extra={"MNIST_NPZ": str(missing)})  # data=mnist reads it
    assert result.returncode != 0 and str(missing) in result.stderr
    client, runs = experiment_runs(uri)
    assert [r.data.tags["data"] for r in runs] == ["mnist_5k"]
    summary = sweep / "report" / "summary.md"
    assert summary.is_file(), result.stdout[-3000:] + result.stderr[-3000:]
    assert "runs: 1 finished" in summary.read_text()


@pytest.mark.slow
def test_the_main_command_runs_the_article_sweep_and_prints_its_table(tmp_path):
    """`make run`'s command, on 2 seeds: parallel jobs, then the article's table."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_cli(["experiment=article_seeds", "seed=range(0,2)", "budget=100",
                      "stages.self_training.params.max_rounds=5", f"tracking.uri={uri}",
                      f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert "LokyBackend with" in out  # the joblib launcher ran the jobs
    assert f"mlflow ui --backend-store-uri {uri}" in out
    client, runs = experiment_runs(uri, "article-seeds")
    # the printed table's "ours" column is the mean over our runs, not the article's figure
    gt = {r.info.run_id for r in runs if r.data.tags.get("ground_truth", str(
        r.data.tags["strategy"] == "full").lower()) == "true"}

    def mean(strategy: str | None, metric: str = "final_test_accuracy") -> float:
        values = [r.data.metrics[metric] for r in runs
                  if (r.info.run_id in gt if strategy is None else
                      r.info.run_id not in gt and r.data.tags["strategy"] == strategy)]
        return sum(values) / len(values)

    expected = {"4000 samples": mean(None), "400 random samples": mean("random"),
                "400 active learned samples": mean("least_confident"),
                "+ auto-labeling": mean("least_confident", "self_training/final_test_accuracy")}
    lines = out.splitlines()
    for row, value in expected.items():
        printed = [line for line in lines if line.startswith(f"| {row} |")]
        assert printed and all(f"| {value:.4f} ± " in line for line in printed), (row, printed)
    arms = sorted((r.data.tags["strategy"], r.data.tags["seed"]) for r in runs)
    assert arms == [(s, str(seed)) for s in ("full", "least_confident", "random")
                    for seed in (0, 1)]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["joblib", "parallel"])
def test_a_parallel_sweep_leaves_nothing_in_the_temp_folder(tmp_path, launcher):
    """TensorFlow's autograph files and every scratch folder go to a private temp folder that
    the command line removes, also for joblib workers that are killed at the sweep's end and
    for the parallel launcher's fork server (its socket) and forked workers."""
    import os
    import subprocess
    import sys

    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["TMPDIR"] = str(temp)
    result = subprocess.run(
        [sys.executable, "-m", "al_research", "-m", f"hydra/launcher={launcher}", "seed=0,1",
         *SHORT,
         f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
         f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    _, runs = experiment_runs(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert len(runs) == 2
    assert list(temp.iterdir()) == []
