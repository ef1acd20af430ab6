"""Every configured model satisfies the learner protocol; softmax reproduces the article's picks."""

import json
from pathlib import Path

import numpy as np
import pytest

from al_research.config import ConfigError, validate
from al_research.models.base import Capability, CapabilityError, FitInfo, Learner
from tests.conftest import CONF_DIR, compose

MODELS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
GOLDEN = Path(__file__).parent / "data" / "softmax_golden.json"


@pytest.fixture(scope="module")
def split():
    from al_research.data import make_split

    return make_split(validate(compose(["data.pool_size=300", "budget=100"])).data, seed=0)


def _build(name: str, split, extra: list[str] | None = None):
    from al_research.experiment.parts import build_model

    conf = validate(compose([f"model={name}", "data.pool_size=300", "budget=100",
                             "model.early_stopping.max_epochs=30", *(extra or [])]))
    return build_model(conf, split)


@pytest.mark.parametrize("name", MODELS)
def test_every_model_satisfies_the_learner_protocol(name, split):
    model = _build(name, split)
    assert isinstance(model, Learner)
    info = model.fit(split.pool_x[:60], split.pool_y[:60])
    assert isinstance(info, FitInfo) and 1 <= info.epochs <= 30 and info.seconds > 0
    proba = model.predict_proba(split.test_x[:25])
    assert proba.shape == (25, split.n_classes)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    accuracy = model.score(split.test_x, split.test_y)
    assert accuracy == int((model.predict_proba(split.test_x).argmax(1)
                            == split.test_y).sum()) / len(split.test_y)  # exact: hits / n
    assert accuracy > 0.3  # ten classes: chance is 0.1
    embedded = model.embed(split.test_x[:25])
    assert embedded.ndim == 2 and len(embedded) == 25
    joint = model.predict_proba_and_embed(split.test_x[:25])
    np.testing.assert_array_equal(joint[0], proba)
    np.testing.assert_array_equal(joint[1], embedded)
    assert {Capability.PROBA, Capability.EMBEDDINGS,
            Capability.GRAD_EMBEDDINGS} <= model.capabilities
    assert model.has_dropout == (Capability.MC_SAMPLES in model.capabilities)
    assert model.embeds_input == (name == "softmax")
    if model.has_dropout:
        samples = model.predict_proba_samples(split.test_x[:25], 4)
        assert samples.shape == (4, 25, split.n_classes)
        assert not np.allclose(samples[0], samples[1])  # dropout is on in the passes
    else:
        with pytest.raises(CapabilityError, match="dropout"):
            model.predict_proba_samples(split.test_x[:25], 4)
    model.reset()
    after_reset = model.predict_proba(split.test_x[:25])
    assert not np.allclose(after_reset, proba)


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_same_model(name, split):
    a, b = _build(name, split), _build(name, split)
    for model in (a, b):
        model.fit(split.pool_x[:40], split.pool_y[:40])
    np.testing.assert_array_equal(a.predict_proba(split.test_x), b.predict_proba(split.test_x))


def test_softmax_reproduces_the_pre_refactor_picks_and_accuracies():
    """Recorded from the hand-wired model.py before models became pluggable (see the file)."""
    from al_research.config import build
    from al_research.data import make_split
    from al_research.experiment.loop import Evaluation, LabelledPool, run_active_learning
    from al_research.experiment.oracle import Oracle
    from al_research.experiment.parts import build_model

    golden = json.loads(GOLDEN.read_text())
    for seed in ("0", "1"):
        conf = validate(compose(["data.pool_size=1000", "budget=100", f"seed={seed}"]))
        split = make_split(conf.data, conf.seed)
        model = build_model(conf, split)
        strategy = build(conf.strategy._target_, conf.strategy.params, "strategy")
        initial = np.sort(np.random.default_rng([conf.seed, 1]).choice(1000, 10, replace=False))
        rounds = run_active_learning(
            model, LabelledPool(split.pool_x, Oracle(split.pool_y)),
            Evaluation(split.test_x, split.test_y, split.val_x, split.val_y), strategy, initial,
            10, 100, np.random.default_rng([conf.seed, 2]))
        assert [r.selected.tolist() for r in rounds] == golden[seed]["selected"]
        assert [r.epochs for r in rounds] == golden[seed]["epochs"]
        assert [float(np.float32(r.test_accuracy)) for r in rounds] == [
            float(np.float32(a)) for a in golden[seed]["test_accuracy"]]


def test_a_model_typo_lists_the_valid_models():
    from hydra.errors import MissingConfigException

    with pytest.raises(MissingConfigException) as info:
        compose(["model=softmx"])
    assert "softmax" in str(info.value)


def test_a_model_params_typo_lists_the_valid_keys():
    with pytest.raises(ConfigError, match="valid"):
        validate(compose(["+model.params.width=3"]))


def test_an_unimportable_model_target_is_a_config_error():
    with pytest.raises(ConfigError, match="cannot be imported"):
        validate(compose(["model._target_=al_research.models.nowhere.Model"]))


@pytest.mark.parametrize("name", ["softmax", "mlp"])
def test_spawn_is_a_fresh_model_of_the_same_configuration(name, split):
    model = _build(name, split)
    assert Capability.RETRAIN in model.capabilities
    model.fit(split.pool_x[:60], split.pool_y[:60])
    child = model.spawn(7)
    assert type(child) is type(model) and child.params == model.params
    assert child.training == model.training and child.monitor is model.monitor
    assert child.adam_step == 0  # untrained
    assert not all(np.array_equal(a, b) for a, b in zip(child.weights, model.weights,
                                                         strict=True))
    twin = model.spawn(7)  # the same seed: the same initial weights, the same fit
    for a, b in zip(child.weights, twin.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    child.fit(split.pool_x[:40], split.pool_y[:40])
    twin.fit(split.pool_x[:40], split.pool_y[:40])
    np.testing.assert_array_equal(child.predict_proba(split.test_x), twin.predict_proba(
        split.test_x))
    assert model.tracing_counts() == child.tracing_counts()  # shared compiled functions
