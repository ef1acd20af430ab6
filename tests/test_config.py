"""Config composition and validation: bad values fail before any work, naming what is valid."""

import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf.errors import ValidationError

from al_research.config import ConfigError, Monitor, flatten, validate
from tests.conftest import compose


def test_default_config_is_the_article_loop():
    conf = validate(compose())
    assert conf.strategy.name == "least_confident" and conf.data.name == "mnist_5k"
    assert (conf.initial_size, conf.batch_size, conf.budget) == (10, 10, 400)
    assert conf.model.lr == 0.1 and conf.model.early_stopping.patience == 10
    assert conf.model.early_stopping.monitor == Monitor.val and conf.initial.name == "random"


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


def test_unknown_initial_selection_lists_the_choices():
    with pytest.raises(MissingConfigException) as info:
        compose(["initial=middle"])
    assert all(name in str(info.value) for name in ("random", "first", "kmeans", "typiclust"))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("batch_size=-1", "batch_size must be >= 1"),
        ("batch_size=0", "batch_size must be >= 1"),
        ("budget=5000", "larger than the pool"),
        ("initial_size=50 budget=40", "larger than the budget"),
        ("model.lr=-0.1", "model.lr must be positive"),
        ("model.early_stopping.patience=0", "patience"),
        ("stages.self_training.params.mode=sometimes", "stages.self_training.params: mode must be"),
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
    assert conf.initial.name == "first" and conf.model.early_stopping.monitor == Monitor.test
    assert conf.model.warm_start and conf.stages["self_training"].enabled
    assert conf.stages["self_training"].strategies == ["least_confident"]
    assert list(conf.stages) == ["kmeans", "active_learning", "label_fair", "self_training"]
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
    assert conf.model.early_stopping.monitor == Monitor.val and conf.initial.name == "random"


def test_ground_truth_is_the_whole_pool_as_the_initial_set_in_every_experiment():
    """strategy=full sets the initial selection, even where an experiment overrides it."""
    for extra in ([], ["experiment=article"], ["+ablation=first_initial"]):
        conf = validate(compose(["strategy=full", *extra]))
        assert conf.initial.name == "whole_pool", extra
        assert conf.initial._target_.endswith("WholePool")
    assert validate(compose(["experiment=article"])).initial.name == "first"
    assert validate(compose(["+ablation=first_initial"])).initial.name == "first"


def test_stage_params_are_checked_with_their_key():
    with pytest.raises(ConfigError, match="stages.kmeans.params: .*k must be >= 2"):
        validate(compose(["stages.kmeans.params.k=1"]))
    with pytest.raises(ConfigError, match="stages.label_fair.params.models: no model 'nope'"):
        validate(compose(["stages.label_fair.params.models=[nope]"]))


def test_a_stage_needing_what_no_earlier_stage_gives_is_refused_before_any_work():
    from al_research.experiment.stages import build_stages

    conf = validate(compose(["stages.self_training.enabled=true",
                             "stages=[kmeans,self_training,active_learning]"]))
    with pytest.raises(ConfigError, match="stages.self_training needs LoopResult"):
        build_stages(conf.stages, conf.strategy.name)
