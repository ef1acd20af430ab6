"""Config composition and validation: bad values fail before any work, naming what is valid."""

import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf.errors import ValidationError

from al_research.config import ConfigError, Initial, Monitor, flatten, validate
from tests.conftest import compose


def test_default_config_is_the_article_loop():
    conf = validate(compose())
    assert conf.strategy.name == "least_confident" and conf.data.name == "mnist_5k"
    assert (conf.initial_size, conf.batch_size, conf.budget) == (10, 10, 400)
    assert conf.model.lr == 0.1 and conf.model.early_stopping.patience == 10
    assert conf.model.early_stopping.monitor == Monitor.val and conf.initial == Initial.random


def test_unknown_strategy_lists_the_choices():
    with pytest.raises(MissingConfigException) as info:
        compose(["strategy=foo"])
    assert "least_confident" in str(info.value) and "random" in str(info.value)


def test_badly_typed_value_is_rejected():
    with pytest.raises((ConfigCompositionException, ValidationError), match="abc"):
        compose(["model.lr=abc"])


def test_unknown_key_is_rejected():
    with pytest.raises((ConfigCompositionException, ValidationError)):
        compose(["model.learning_rate=0.1"])


def test_bad_enum_lists_valid_values():
    with pytest.raises((ConfigCompositionException, ValidationError)) as info:
        compose(["initial=middle"])
    assert "random" in str(info.value.__cause__ or info.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("batch_size=-1", "batch_size must be >= 1"),
        ("batch_size=0", "batch_size must be >= 1"),
        ("budget=5000", "larger than the pool"),
        ("initial_size=50 budget=40", "larger than the budget"),
        ("model.lr=-0.1", "model.lr must be positive"),
        ("model.early_stopping.patience=0", "patience"),
        ("self_training.mode=sometimes", "self_training.mode"),
    ],
)
def test_range_errors_name_the_bad_value(override, message):
    with pytest.raises(ConfigError, match=message):
        validate(compose(override.split()))


def test_flatten_gives_dotted_keys_with_plain_values():
    flat = flatten(compose())
    assert flat["model.early_stopping.monitor"] == "val"
    assert flat["data.pool_size"] == 4000 and flat["strategy.name"] == "least_confident"


def test_article_experiment_composes_faithfully():
    cfg = compose(["experiment=article"])
    conf = validate(cfg)
    assert conf.initial == Initial.first and conf.model.early_stopping.monitor == Monitor.test
    assert conf.model.warm_start and conf.self_training.enabled
    assert conf.self_training.strategies == ["least_confident"]
    assert conf.tracking.tags["protocol"] == "article"


def test_article_seeds_experiment_is_a_whole_sweep():
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from tests.conftest import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose("config", ["experiment=article_seeds"], return_hydra_config=True)
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    params = cfg.hydra.sweeper.params
    assert set(params.strategy.split(",")) == {"full", "random", "least_confident"}
    assert params.seed == "range(0,20)"
    conf = validate(compose(["experiment=article_seeds"]))
    assert conf.model.early_stopping.monitor == Monitor.val and conf.initial == Initial.random
