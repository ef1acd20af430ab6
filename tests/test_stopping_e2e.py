"""Stopping criteria in real runs (real TensorFlow training, a real SQLite MLflow store):
recording every criterion changes no pick and no accuracy and logs each one's value and firing;
`stopping.action=stop` ends the loop early through the real command line and says so; the
report reads the runs back."""

from __future__ import annotations

import json
import math

import pytest

from al_research.experiment.runner import run
from tests.conftest import SHORT, compose, experiment_runs, run_cli

CRITERIA = ("kappa", "overall_uncertainty", "max_confidence", "classification_change",
            "val_plateau")
FIVE_ROUNDS = [*SHORT, "budget=50"]  # the kappa window (3) needs four rounds for a value


def _history(client, run_id: str, key: str) -> dict[int, float]:
    return {m.step: m.value for m in client.get_metric_history(run_id, key)}


def _picks(client, run_id: str) -> dict:
    with open(client.download_artifacts(run_id, "selected_indices.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("arm", [["strategy=least_confident"],
                                 ["strategy=random", "model=mlp",
                                  "model.early_stopping.max_epochs=15"]])
def test_recording_every_criterion_changes_no_pick_and_no_accuracy(store_uri, client_for, arm):
    """The same seed with and without `stopping=all stopping.action=record`: the same picks
    (random selection draws from the loop's rng: the stop set must not) and the same accuracies,
    with every criterion's value per round and its firing logged."""
    base = [*FIVE_ROUNDS, *arm, f"tracking.uri={store_uri}", "seed=2"]
    plain = run(compose(base))
    recorded = run(compose([*base, "stopping=all", "stopping.action=record"]))
    assert plain == recorded
    client, runs = experiment_runs(store_uri)
    assert len(runs) == 2
    (with_,) = [r for r in runs if "stopping.criteria.kappa._target_" in r.data.params]
    (without,) = [r for r in runs if r is not with_]
    assert _picks(client, without.info.run_id) == _picks(client, with_.info.run_id)
    for key in ("test_accuracy", "val_accuracy", "epochs", "mean_confidence"):
        assert _history(client, without.info.run_id, key) == \
            _history(client, with_.info.run_id, key), key
    assert not any(k.startswith("stopping") for k in without.data.metrics)
    assert not any(k.startswith("stopping") for k in without.data.tags)

    steps = [10, 20, 30, 40, 50]
    values = {c: _history(client, with_.info.run_id, f"stopping/{c}") for c in CRITERIA}
    assert sorted(values["overall_uncertainty"]) == steps
    assert sorted(values["val_plateau"]) == steps
    assert sorted(values["classification_change"]) == steps[1:]  # a change needs two rounds
    assert sorted(values["kappa"]) == steps[3:]  # three kappas: four rounds
    assert sorted(values["max_confidence"]) == steps[:-1]  # the last round selects nothing
    assert all(0.0 <= v <= 1.0 for c in CRITERIA if c != "val_plateau"
               for v in values[c].values())
    # the plateau's value, from the run's own validation accuracies
    val = _history(client, with_.info.run_id, "val_accuracy")
    best, count, since = -math.inf, 0, []
    for step in steps:
        best, count = (val[step], 0) if val[step] > best else (best, count + 1)
        since.append(count)
    assert [values["val_plateau"][s] for s in steps] == since
    tags, metrics = with_.data.tags, with_.data.metrics
    for criterion in CRITERIA:
        tag = tags[f"stopping.{criterion}"]
        if tag == "never":
            assert f"stopping/{criterion}/fired_at" not in metrics
        else:
            assert metrics[f"stopping/{criterion}/fired_at"] == int(tag) and int(tag) in steps
    assert "stopped_by" not in tags and with_.data.metrics["labels_spent"] == 50


@pytest.mark.slow
def test_stop_ends_the_loop_at_the_first_firing_with_fewer_labels_and_says_so(tmp_path):
    """Through the command line: the plateau criterion (patience 1; an improvement must exceed
    0.9) fires at the second round: the loop ends there, 20 of 30 labels spent, the round's
    batch unbought; the log says so; the report counts it."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_cli([*SHORT, f"tracking.uri={uri}", f"hydra.run.dir={tmp_path / 'run'}",
                      "stopping=[val_plateau,kappa]", "stopping.action=stop",
                      "stopping.criteria.val_plateau.params.patience=1",
                      "stopping.criteria.val_plateau.params.min_delta=0.9"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    said = (tmp_path / "run" / "app.log").read_text()
    assert ("stopping.action=stop: val_plateau fired at 20 labels: the loop ended there, 10 of "
            "the budget's 30 labels not spent") in said
    assert "stopping: val_plateau fires at 20 labels (value 1)" in said
    assert "labelled   30" not in said  # no third round
    client, (stopped,) = experiment_runs(uri)
    assert stopped.info.status == "FINISHED"
    assert stopped.data.metrics["labels_spent"] == 20
    assert sorted(_history(client, stopped.info.run_id, "test_accuracy")) == [10, 20]
    assert stopped.data.tags["stopped_by"] == "val_plateau"
    assert stopped.data.tags["stopping.val_plateau"] == "20"
    assert stopped.data.tags["stopping.kappa"] == "never"
    assert stopped.data.metrics["stopping/val_plateau/fired_at"] == 20
    picks = _picks(client, stopped.info.run_id)
    assert len(picks["10"]) == 10 and picks["20"] == []  # the batch chosen at 20: not bought

    from al_research import report as rp

    report = rp.generate_report(uri, "al-research", None, tmp_path / "report", target=0.5)
    rows = {r.criterion: r for r in report.results["stopping"]}
    assert (rows["val_plateau"].fired, rows["val_plateau"].labels.mean) == (1, 20)
    assert (rows["kappa"].fired, rows["kappa"].measured) == (0, 0)
    assert "## When to stop" in (tmp_path / "report" / "summary.md").read_text()
