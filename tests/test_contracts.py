"""Contracts every part found in conf/ must meet: a new yaml is tested without editing a test.

Each group's yamls are discovered from the folder (strategy, model, data, initial, stages); each
is composed by Hydra as the command line would, built from its `_target_`, and exercised.
"""

from __future__ import annotations

import numpy as np
import pytest

from al_research.config import build, validate
from al_research.models.base import Capability, FitInfo, Learner
from al_research.strategies.base import Query, QueryContext, Strategy
from tests.conftest import CONF_DIR, compose
from tests.test_strategies import TableLearner


def names(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def everything(n: int, c: int = 4, d: int = 6, seed: int = 0) -> TableLearner:
    """A learner offering every capability (probabilities, embeddings, 20 MC samples, as the
    yamls' defaults ask), from fixed tables."""
    rng = np.random.default_rng(seed)
    z = np.exp(rng.normal(size=(20, n, c)))
    samples = z / z.sum(axis=-1, keepdims=True)
    return TableLearner(samples.mean(axis=0), rng.normal(size=(n, d)), samples)


@pytest.mark.parametrize("name", [n for n in names("strategy") if n != "full"])
def test_every_strategy_queries_distinct_unlabelled_items_reproducibly(name):
    conf = validate(compose([f"strategy={name}", "model=mlp"]))  # mlp: serves every one
    strategy = build(conf.strategy._target_, conf.strategy.params, "strategy")
    assert isinstance(strategy, Strategy) and strategy.name == name
    assert all(isinstance(c, Capability) for c in strategy.needs)
    n = 120
    x = np.column_stack([np.arange(n), np.random.default_rng(1).normal(size=(n, 5))])
    labelled = np.arange(0, n, 12)

    def query() -> Query:
        ctx = QueryContext(x, labelled, np.setdiff1d(np.arange(n), labelled),
                           np.random.default_rng(3), everything(n), 4)
        return strategy.query(ctx, 7)

    first, again = query(), query()
    positions = np.asarray(first.positions)
    assert len(positions) == 7 == len(set(positions.tolist()))
    assert positions.min() >= 0 and positions.max() < n - len(labelled)
    assert positions.tolist() == np.asarray(again.positions).tolist()


@pytest.mark.parametrize("name", names("initial"))
def test_every_initial_selection_chooses_without_a_model(name):
    from al_research.strategies.initial import initial_selection
    from al_research.strategies.pool_cache import PoolCache

    conf = validate(compose([f"initial={name}"]))
    selection = build(conf.initial._target_, conf.initial.params, "initial")
    assert not selection.needs, f"initial={name} needs a model"
    x = np.random.default_rng(2).normal(size=(90, 6)).astype(np.float32)
    ctx = QueryContext(x, np.empty(0, np.int64), np.arange(90), np.random.default_rng(0), None,
                       3, PoolCache(x, seed=0))
    chosen = initial_selection(selection, ctx, 10)
    assert len(set(chosen.tolist())) == len(chosen) and chosen.max() < 90
    assert len(chosen) == (90 if name == "whole_pool" else 10)


@pytest.mark.parametrize("name", names("model"))
def test_every_model_declares_what_it_offers_and_scores_exactly(name):
    from al_research.data import make_split
    from al_research.experiment.parts import build_model

    conf = validate(compose([f"model={name}", "data=digits", "data.pool_size=200",
                             "budget=100", "model.early_stopping.max_epochs=5"]))
    split = make_split(conf.data, conf.seed)
    model = build_model(conf, split)
    assert isinstance(model, Learner)
    assert Capability.PROBA in model.capabilities and isinstance(model.embeds_input, bool)
    info = model.fit(split.pool_x[:50], split.pool_y[:50])
    assert isinstance(info, FitInfo) and 1 <= info.best_epoch <= info.epochs <= 5
    score = model.score(split.test_x[:100], split.test_y[:100])
    assert score * 100 == round(score * 100)  # hits over n, exactly
    proba, embedded = model.predict_proba_and_embed(split.test_x[:7])
    np.testing.assert_allclose(proba, model.predict_proba(split.test_x[:7]), rtol=1e-5)
    assert embedded.shape[0] == 7


@pytest.mark.parametrize("name", names("data"))
def test_every_data_source_loads_a_checked_dataset(name, tmp_path):
    extra = []
    if name == "mnist":  # a Keras-format file of the right shape, as a user would supply
        rng = np.random.default_rng(0)
        path = tmp_path / "mnist.npz"
        np.savez(path, x_train=rng.integers(0, 256, (300, 28, 28), dtype=np.uint8),
                 y_train=rng.integers(0, 10, 300), x_test=rng.integers(0, 256, (60, 28, 28),
                                                                         dtype=np.uint8),
                 y_test=rng.integers(0, 10, 60))
        extra = [f"data.params.path={path}", "data.pool_size=200", "data.val_size=50",
                 "data.test_size=40", "budget=100"]
    conf = validate(compose([f"data={name}", *extra]))
    source = build(conf.data._target_, conf.data.params, "data")
    assert isinstance(source.origin, str) and source.origin
    data = source.load(conf.data.n_classes)
    assert data.x.dtype == np.float32 and data.x.shape[1] == int(np.prod(data.input_shape))
    assert 0 <= data.y.min() and data.y.max() < data.n_classes
    assert 0.0 <= data.x.min() and data.x.max() <= 1.0


@pytest.mark.parametrize("name", names("stages"))
def test_every_stage_declares_its_inputs_and_outputs(name):
    from al_research.experiment.stages import Stage

    conf = validate(compose([f"stages=[kmeans,active_learning,label_fair,self_training,{name}]"
                             if name not in ("kmeans", "active_learning", "label_fair",
                                             "self_training") else "seed=0"]))
    stage_conf = conf.stages[name]
    stage = build(stage_conf._target_, stage_conf.params, f"stages.{name}")
    assert isinstance(stage, Stage) and callable(stage.run)
    assert all(isinstance(t, type) for t in stage.needs)
    assert stage.gives is None or isinstance(stage.gives, type)


def test_the_default_stages_are_in_an_order_that_gives_what_each_needs():
    from al_research.experiment.stages import build_stages

    conf = validate(compose(["stages.self_training.enabled=true"]))
    built = build_stages(conf.stages, conf.strategy.name)
    assert [n for n, _ in built] == names_in_order(conf)


def names_in_order(conf) -> list[str]:
    return [n for n, s in conf.stages.items() if s.enabled]
