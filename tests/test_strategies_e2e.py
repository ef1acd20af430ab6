"""Every strategy on the real loop: real training (softmax, and the MLP for BALD), a real
SQLite MLflow store, a small budget. Each lands a finished run that labelled what it should."""

from __future__ import annotations

import json

import numpy as np
import pytest

from al_research.experiment.runner import run
from tests.conftest import SHORT, compose, experiment_runs

STRATEGIES = [("margin", "softmax"), ("entropy", "softmax"), ("coreset", "softmax"),
              ("badge", "softmax"), ("typiclust", "softmax"), ("probcover", "softmax"),
              ("bald", "mlp"), ("coreset", "mlp"), ("badge", "mlp")]
SMALL_MLP = ["model.params.hidden=32", "model.early_stopping.patience=5",
             "model.early_stopping.max_epochs=60"]


def _selected(client, run_id) -> dict:
    with open(client.download_artifacts(run_id, "selected_indices.json")) as f:
        return json.load(f)


@pytest.mark.slow
@pytest.mark.parametrize(("strategy", "model"), STRATEGIES, ids=[f"{s}-{m}" for s, m in
                                                                    STRATEGIES])
def test_every_strategy_lands_a_finished_run(store_uri, strategy, model):
    overrides = [*SHORT, f"tracking.uri={store_uri}", f"strategy={strategy}", f"model={model}",
                 "seed=2"]
    if model == "mlp":
        overrides += SMALL_MLP
    accuracy = run(compose(overrides))
    client, runs = experiment_runs(store_uri)
    (r,) = runs
    assert r.info.status == "FINISHED" and r.data.tags["strategy"] == strategy
    assert r.data.metrics["labels_spent"] == 30 and 0 < accuracy <= 1
    picked = _selected(client, r.info.run_id)
    chosen = picked["initial"] + picked["10"] + picked["20"]
    assert len(chosen) == len(set(chosen)) == 30 and max(chosen) < 500
    history = client.get_metric_history(r.info.run_id, "select_seconds")
    assert len(history) >= 2 and all(m.value >= 0 for m in history)


@pytest.mark.slow
def test_strategy_hyperparameters_tag_the_run(store_uri):
    run(compose([*SHORT, f"tracking.uri={store_uri}", "strategy=probcover",
                 "strategy.params.delta=0.4", "strategy.params.pca_dim=20"]))
    _, (r,) = experiment_runs(store_uri)
    assert r.data.tags["strategy.delta"] == "0.4" and r.data.tags["strategy.pca_dim"] == "20"


@pytest.mark.slow
@pytest.mark.parametrize("initial", ["typiclust", "probcover"])
def test_cold_start_initial_selection(store_uri, initial):
    run(compose([*SHORT, f"tracking.uri={store_uri}", f"initial={initial}", "seed=3"]))
    client, (r,) = experiment_runs(store_uri)
    assert r.info.status == "FINISHED" and r.data.tags["initial"] == initial
    first = _selected(client, r.info.run_id)["initial"]
    assert len(first) == len(set(first)) == 10
    run(compose([*SHORT, f"tracking.uri={store_uri}", "initial=random", "seed=3"]))
    _, runs = experiment_runs(store_uri)
    other = [x for x in runs if x.info.run_id != r.info.run_id][0]
    assert sorted(first) != sorted(_selected(client, other.info.run_id)["initial"])


def test_unknown_strategy_lists_the_new_ones():
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException) as error:
        compose(["strategy=bal"])
    message = str(error.value.__cause__ or error.value)
    for name in ("bald", "badge", "coreset", "entropy", "margin", "probcover", "typiclust"):
        assert name in message


def test_scores_reach_the_round_log():
    """The loop hands each round's utilities on (the lead logs their histogram)."""
    from al_research.experiment.loop import Evaluation, LabelledPool, run_active_learning
    from al_research.experiment.oracle import Oracle
    from al_research.strategies.uncertainty import Margin
    from tests.test_strategies import TableLearner, softmax

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=60)

    class Fixed(TableLearner):  # a table learner that "trains" instantly
        def __init__(self):
            super().__init__(proba=softmax(rng.normal(size=(60, 3))))
            self.x = x

        def fit(self, xs, ys):
            from al_research.models.base import FitInfo
            return FitInfo(1, 0.0)

        def predict_proba(self, xs):
            rows = [int(np.flatnonzero((self.x == r).all(axis=1))[0]) for r in np.asarray(xs)]
            return self.proba[rows]

        def score(self, xs, ys):  # the loop's held-out sets are tensors: np.asarray
            return float((self.predict_proba(xs).argmax(1) == np.asarray(ys)).mean())

    held = Evaluation(x[:5], y[:5], x[:5], y[:5])
    rounds = run_active_learning(Fixed(), LabelledPool(x, Oracle(y)), held, Margin(),
                                 np.arange(5), 5, 15, rng, n_classes=3)
    assert rounds[0].score_name == "one_minus_margin" and len(rounds[0].scores) == 55


def test_the_comparison_sweep_covers_every_strategy_on_both_models():
    from omegaconf import OmegaConf

    from tests.conftest import CONF_DIR

    sweep = OmegaConf.load(CONF_DIR / "experiment" / "strategies.yaml").hydra.sweeper.params
    strategies = {p.stem for p in (CONF_DIR / "strategy").glob("*.yaml")}
    assert set(sweep.strategy.split(",")) == strategies
    assert sweep.model.split(",") == ["softmax", "mlp"] and sweep.seed == "range(0,10)"
    conf = compose(["experiment=strategies", "model=softmax", "strategy=bald"])
    assert conf.skip_incompatible and conf.initial.name == "random"


def test_a_sweep_skips_bald_on_softmax_without_a_run(store_uri, caplog):
    result = run(compose([*SHORT, f"tracking.uri={store_uri}", "strategy=bald",
                          "skip_incompatible=true"]))
    assert result is None or np.isnan(result)
    _, runs = experiment_runs(store_uri)
    assert runs == [] and "skip" in caplog.text.lower() and "bald" in caplog.text


def test_the_batch_size_sweep_covers_the_batch_aware_and_stochastic_strategies():
    from omegaconf import OmegaConf

    from al_research.config import validate
    from tests.conftest import CONF_DIR

    sweep = OmegaConf.load(CONF_DIR / "experiment" / "batch_sizes.yaml").hydra.sweeper.params
    assert [int(b) for b in str(sweep.batch_size).split(",")] == [10, 50, 200]
    assert sweep.seed == "range(0,10)"
    assert {"random", "least_confident", "bald", "badge", "batchbald", "epig", "power",
            "softmax_sampling", "softrank", "qbc_vote_entropy", "qbc_kl",
            "cluster_margin"} <= set(sweep.strategy.split(","))
    for strategy in sweep.strategy.split(","):  # every job's config is valid on the MLP
        conf = validate(compose(["experiment=batch_sizes", f"strategy={strategy}",
                                 "batch_size=200"]))
        assert (conf.model.name, conf.budget, conf.batch_size) == ("mlp", 1000, 200)
