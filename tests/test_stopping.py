"""Stopping criteria on hand-made prediction sequences, the monitor that logs them, the report's
"When to stop" section, and their config errors through the real command line (one line, exit
2, before TensorFlow loads)."""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pytest
from scipy.stats import entropy
from sklearn.metrics import cohen_kappa_score

from al_research.config import CriterionConfig, StopAction, StoppingConfig
from al_research.stopping.agreement import ClassificationChange, StabilizingPredictions
from al_research.stopping.base import Observation, cohen_kappa, normalised_entropy
from al_research.stopping.monitor import (
    STOP_SET_STREAM,
    StoppingMonitor,
    build_criteria,
    draw_stop_set,
)
from al_research.stopping.uncertainty import MaxConfidence, OverallUncertainty
from al_research.stopping.validation import ValidationPlateau
from al_research.tracking.names import NEVER, Tag
from tests.test_errors import _cli, config_error_line


def onehot(labels, n_classes: int, sharp: float = 0.97) -> np.ndarray:
    """Probabilities peaked at `labels` (`sharp` on the label, the rest spread evenly)."""
    labels = np.asarray(labels)
    p = np.full((len(labels), n_classes), (1 - sharp) / (n_classes - 1))
    p[np.arange(len(labels)), labels] = sharp
    return p


def observation(n_labelled=10, val=0.5, n_classes=3, unlabelled=None, proba=None,
                selected=(), stop_set_proba=None, asked=None) -> Observation:
    """One round as a criterion sees it; `stop_set_proba` is what the model predicts for the
    stop set (positions 0..len-1), and `asked` collects the positions it was asked for."""
    unlabelled = np.arange(0 if proba is None else len(proba)) if unlabelled is None else \
        np.asarray(unlabelled)
    proba = np.empty((0, n_classes)) if proba is None else np.asarray(proba)
    stop = np.arange(0 if stop_set_proba is None else len(stop_set_proba))

    def predict(positions):
        if asked is not None:
            asked.append(np.asarray(positions).tolist())
        return np.asarray(stop_set_proba)[positions]

    return Observation(n_labelled, val, n_classes, unlabelled, proba,
                       np.asarray(selected, np.int64), stop, predict)


# -- the measures ------------------------------------------------------------------------------
@pytest.mark.parametrize("n_classes", [2, 3, 10])
def test_kappa_is_scikit_learns_and_one_for_identical_predictions(n_classes):
    rng = np.random.default_rng(n_classes)
    for agree in (0.0, 0.3, 0.8, 0.97):
        a = rng.integers(0, n_classes, 400)
        b = np.where(rng.random(400) < agree, a, rng.integers(0, n_classes, 400))
        expected = cohen_kappa_score(a, b, labels=np.arange(n_classes))
        assert cohen_kappa(a, b, n_classes) == pytest.approx(expected, abs=1e-12)
        assert cohen_kappa(a, a, n_classes) == 1.0
    constant = np.full(50, 1)  # scikit-learn's formula is 0/0 here: small-text's adapted kappa
    assert cohen_kappa(constant, constant, n_classes) == 1.0


def test_kappa_of_independent_predictions_is_near_zero_and_of_opposite_ones_negative():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 10, 20000), rng.integers(0, 10, 20000)
    assert abs(cohen_kappa(a, b, 10)) < 0.02
    assert cohen_kappa(np.array([0, 1] * 50), np.array([1, 0] * 50), 2) == pytest.approx(-1.0)


def test_normalised_entropy_is_scipys_over_log_classes():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(4), 30)
    p[0] = [1.0, 0.0, 0.0, 0.0]
    np.testing.assert_allclose(normalised_entropy(p, 4), entropy(p, axis=1) / np.log(4))
    assert normalised_entropy(np.full((1, 4), 0.25), 4)[0] == pytest.approx(1.0)
    assert normalised_entropy(p[:1], 4)[0] == 0.0


# -- stabilizing predictions -------------------------------------------------------------------
def test_stabilizing_predictions_fires_on_the_mean_of_the_last_window_kappas():
    rng = np.random.default_rng(2)
    labels = [rng.integers(0, 3, 60)]
    for flip in (0.3, 0.1, 0.0, 0.0, 0.0):  # predictions settle round after round
        last = labels[-1].copy()
        changed = rng.random(60) < flip
        last[changed] = (last[changed] + 1) % 3
        labels.append(last)
    criterion = StabilizingPredictions(StabilizingPredictions.Params(threshold=0.99, window=3))
    asked: list = []
    readings = [criterion.observe(observation(stop_set_proba=onehot(y, 3), asked=asked))
                for y in labels]
    kappas = [cohen_kappa_score(labels[i + 1], labels[i], labels=[0, 1, 2]) for i in range(5)]
    assert all(math.isnan(r.value) and not r.fires for r in readings[:3])  # 3 kappas needed
    for i in (3, 4, 5):
        assert readings[i].value == pytest.approx(np.mean(kappas[i - 3:i]))
    assert [r.fires for r in readings[3:]] == [False, False, True]  # the last three identical
    assert readings[5].value == 1.0
    assert asked == [list(range(60))] * 6  # the stop set, every round


def test_stabilizing_predictions_with_a_window_of_one_fires_on_the_second_identical_round():
    criterion = StabilizingPredictions(StabilizingPredictions.Params(threshold=0.9, window=1))
    same = onehot([0, 1, 2, 1], 3)
    assert not criterion.observe(observation(stop_set_proba=same)).fires
    assert criterion.observe(observation(stop_set_proba=same)).fires


# -- overall uncertainty and max confidence ----------------------------------------------------
def test_overall_uncertainty_is_the_pools_mean_normalised_entropy():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(3) * 0.2, 40)
    reading = OverallUncertainty().observe(observation(proba=p))
    assert reading.value == pytest.approx(np.mean(entropy(p, axis=1) / np.log(3)))
    assert reading.fires == (reading.value < 0.05)
    confident = OverallUncertainty().observe(observation(proba=onehot([0, 1, 2], 3, 0.9999)))
    assert confident.value < 0.05 and confident.fires
    assert not OverallUncertainty().observe(observation(proba=np.full((5, 3), 1 / 3))).fires
    empty = OverallUncertainty().observe(observation())
    assert math.isnan(empty.value) and not empty.fires


def test_max_confidence_reads_the_least_confident_item_of_the_selected_batch_only():
    unlabelled = np.array([2, 5, 7, 9])
    proba = np.array([[1 / 3] * 3, onehot([0], 3, 0.99999)[0], onehot([1], 3, 0.9)[0],
                      [1 / 3] * 3])
    criterion = MaxConfidence(MaxConfidence.Params(threshold=0.001))
    sure = criterion.observe(observation(unlabelled=unlabelled, proba=proba, selected=[5]))
    assert sure.value == pytest.approx(normalised_entropy(proba[1:2], 3)[0]) and sure.fires
    mixed = criterion.observe(observation(unlabelled=unlabelled, proba=proba, selected=[5, 7]))
    assert mixed.value == pytest.approx(normalised_entropy(proba[2:3], 3)[0])  # the largest
    assert not mixed.fires  # one selected item is not confident enough
    nothing = criterion.observe(observation(unlabelled=unlabelled, proba=proba, selected=[]))
    assert math.isnan(nothing.value) and not nothing.fires


# -- classification change ---------------------------------------------------------------------
def test_classification_change_counts_changes_over_the_items_unlabelled_at_both_rounds():
    first = np.arange(10)
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    now = np.array([0, 1, 2, 4, 5, 6, 7, 8, 9])  # item 3 was labelled in between
    changed = labels[now].copy()
    changed[-1] = 1  # one change among the 9 common items

    def run(threshold, second):
        criterion = ClassificationChange(ClassificationChange.Params(threshold=threshold))
        start = criterion.observe(observation(unlabelled=first, proba=onehot(labels, 3)))
        assert math.isnan(start.value) and not start.fires
        return criterion.observe(observation(unlabelled=now, proba=onehot(second, 3)))

    same = labels[now].copy()
    same_but_3 = run(0.0, same)
    assert same_but_3.value == 0.0 and same_but_3.fires  # item 3's label is not compared
    one = run(0.0, changed)
    assert one.value == pytest.approx(1 / 9) and not one.fires
    assert run(1 / 9, changed).fires and not run(0.1, changed).fires


# -- validation plateau ------------------------------------------------------------------------
def test_validation_plateau_counts_rounds_without_an_improvement_above_min_delta():
    criterion = ValidationPlateau(ValidationPlateau.Params(patience=2, min_delta=0.01))
    values = [0.50, 0.60, 0.605, 0.609, 0.70, 0.70]
    readings = [criterion.observe(observation(val=v)) for v in values]
    assert [r.value for r in readings] == [0, 0, 1, 2, 0, 1]
    assert [r.fires for r in readings] == [False, False, False, True, False, False]


# -- the monitor -------------------------------------------------------------------------------
class Recorder:
    def __init__(self):
        self.metrics: list[tuple[dict, int]] = []
        self.tags: dict[str, str] = {}

    def log_metrics(self, metrics, step=0):
        self.metrics.append((dict(metrics), step))

    def set_tags(self, tags):
        self.tags.update(tags)


def _monitor(action="record", stop_on=(), patience=1):
    conf = StoppingConfig(criteria={
        "plateau": CriterionConfig("al_research.stopping.validation.ValidationPlateau",
                                   {"patience": patience}),
        "uncertain": CriterionConfig("al_research.stopping.uncertainty.OverallUncertainty",
                                     {"threshold": 0.5})},
        action=StopAction(action), stop_on=list(stop_on))
    return StoppingMonitor(conf, build_criteria(conf), np.arange(4), 3, Recorder())


def _feed(monitor, rounds):
    """Rounds of (val accuracy, pool confident?, selected); what the monitor answered."""
    said = []
    for i, (val, confident, selected) in enumerate(rounds):
        proba = onehot([0, 1, 2], 3, 0.999) if confident else np.full((3, 3), 1 / 3)
        said.append(monitor.observe(observation(n_labelled=10 * (i + 1), val=val, proba=proba,
                                                selected=selected)))
    return said


def test_recording_logs_every_value_and_the_first_firing_once_and_never_stops():
    monitor = _monitor()
    said = _feed(monitor, [(0.5, False, [0]), (0.4, True, [1]), (0.4, True, [])])
    assert said == [False, False, False]
    rec = monitor.recorder
    assert rec.metrics[0] == ({"stopping/plateau": 0.0,
                               "stopping/uncertain": pytest.approx(1.0)}, 10)
    assert rec.metrics[1][1] == 20 and rec.metrics[1][0]["stopping/plateau/fired_at"] == 20
    assert rec.metrics[1][0]["stopping/uncertain/fired_at"] == 20
    assert "stopping/plateau/fired_at" not in rec.metrics[2][0]  # logged once, when it first fires
    assert rec.tags == {"stopping.plateau": "20", "stopping.uncertain": "20"}
    monitor.finish(30)
    assert Tag.STOPPED_BY not in rec.tags


def test_stop_ends_at_the_first_firing_of_a_named_criterion_and_tags_the_rest_never():
    monitor = _monitor("stop", stop_on=["plateau"], patience=2)
    said = _feed(monitor, [(0.5, True, [0]), (0.4, True, [1]), (0.4, True, [2]), (0.4, True, [])])
    assert said == [False, False, True, False]  # "uncertain" fired first, but is not named
    monitor.finish(40)
    assert monitor.recorder.tags == {"stopping.uncertain": "10", "stopping.plateau": "30",
                                     Tag.STOPPED_BY: "plateau"}
    never = _monitor("stop", stop_on=["plateau"], patience=5)
    _feed(never, [(0.5, False, [0])])
    never.finish(40)
    assert never.recorder.tags == {"stopping.plateau": NEVER, "stopping.uncertain": NEVER}


def test_stop_on_the_last_round_saves_nothing_and_says_nothing():
    monitor = _monitor("stop")
    assert _feed(monitor, [(0.5, False, [0]), (0.4, False, [])]) == [False, False]
    monitor.finish(20)
    assert Tag.STOPPED_BY not in monitor.recorder.tags


def test_the_stop_set_comes_from_its_own_stream_of_the_seed():
    first = draw_stop_set(3, 4000, 2000)
    assert len(first) == 2000 == len(set(first.tolist())) and np.all(np.diff(first) > 0)
    assert first.tolist() == draw_stop_set(3, 4000, 2000).tolist()
    assert first.tolist() != draw_stop_set(4, 4000, 2000).tolist()
    expected = np.sort(np.random.default_rng([3, STOP_SET_STREAM]).choice(4000, 2000,
                                                                           replace=False))
    assert first.tolist() == expected.tolist()
    assert draw_stop_set(3, 500, 2000).tolist() == list(range(500))  # a small pool: all of it


# -- config errors through the command line ----------------------------------------------------
@pytest.mark.parametrize(("args", "expected"), [
    (["stopping=all", "stopping.criteria.kappa.params.threshold=1.5"],
     "stopping.criteria.kappa.params: threshold must be in (0, 1], got 1.5"),
    (["stopping=kappa", "stopping.criteria.kappa.params.window=0"],
     "stopping.criteria.kappa.params: window must be >= 1, got 0"),
    (["stopping=val_plateau", "stopping.criteria.val_plateau.params.min_delta=-0.1"],
     "stopping.criteria.val_plateau.params: min_delta must be in [0, 1), got -0.1"),
    (["stopping=classification_change",
      "stopping.criteria.classification_change.params.threshold=2"],
     "stopping.criteria.classification_change.params: threshold must be in [0, 1], got 2.0"),
    (["stopping.action=stop"],
     "stopping.action=stop needs a criterion: e.g. stopping=all or stopping=val_plateau"),
    (["stopping=kappa", "stopping.stop_on=[val_plateau]"],
     "stopping.stop_on: val_plateau is not a configured criterion; configured: kappa"),
    (["stopping=sometimes"], "stopping=sometimes: no such stopping; valid choices: all, "),
])
def test_a_wrong_stopping_parameter_is_one_line_exit_2_before_tensorflow(tmp_path, args,
                                                                          expected):
    line = config_error_line(tmp_path, args)
    assert line.startswith(f"al-research: error: {expected}"), line


OUTSIDE = '''
"""A lab's own stopping criterion, outside al_research: it needs MC-dropout samples."""
from dataclasses import dataclass

from al_research.models.base import Capability
from al_research.stopping.base import Criterion, Reading


class Disagreement(Criterion):
    needs = frozenset({Capability.PROBA, Capability.MC_SAMPLES})

    @dataclass
    class Params:
        threshold: float = 0.1

    def observe(self, obs):
        return Reading(0.0, False)
'''


def _lab(tmp_path):
    lab = tmp_path / "lab"
    (lab / "conf" / "stopping").mkdir(parents=True)
    (lab / "lab_stopping.py").write_text(textwrap.dedent(OUTSIDE))
    (lab / "conf" / "stopping" / "disagreement.yaml").write_text(
        "# @package stopping.criteria.disagreement\n_target_: lab_stopping.Disagreement\n"
        "params:\n  threshold: 0.2\n")
    return lab


def test_a_criterion_the_model_cannot_serve_is_refused_before_tensorflow(tmp_path):
    lab = _lab(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    result, _ = _cli([f"hydra.searchpath=[file://{lab / 'conf'}]", "stopping=disagreement",
                      f"tracking.uri=sqlite:///{work / 'mlflow.db'}"], work,
                     {"PYTHONPATH": str(lab)})
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert lines[0] == ("al-research: error: stopping criterion 'disagreement' needs "
                        "mc_samples, and model 'softmax' offers embeddings, grad_embeddings, "
                        "proba, retrain; use a model with dropout (model=mlp or model=cnn with "
                        "model.params.dropout > 0)"), lines[0]
    assert "LOADED:\n" in result.stdout
    assert sorted(p.name for p in work.iterdir()) == []


@pytest.mark.parametrize(("overrides", "refused"), [
    (["model=mlp"], False), (["model=cnn"], False), (["model=softmax"], True),
    (["model=mlp", "model.params.dropout=0"], True),
])
def test_the_models_capabilities_are_known_from_the_config(tmp_path, monkeypatch, overrides,
                                                          refused):
    from al_research.config import ConfigError, validate
    from tests.conftest import compose

    lab = _lab(tmp_path)
    monkeypatch.syspath_prepend(str(lab))
    cfg = compose([f"hydra.searchpath=[file://{lab / 'conf'}]", "stopping=[disagreement,all]",
                   *overrides])
    if refused:
        with pytest.raises(ConfigError, match="stopping criterion 'disagreement' needs "
                                              "mc_samples"):
            validate(cfg)
    else:
        assert list(validate(cfg).stopping.criteria)[0] == "disagreement"
