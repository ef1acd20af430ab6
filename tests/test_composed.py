"""A sweep's job configs: one composed by Hydra per combination of config-group choices, the
others set from a copy of it (`sweeps.composed.compose_all`), equal to Hydra's own."""

from __future__ import annotations

import logging

import pytest
from omegaconf import OmegaConf

from tests.conftest import CONF_DIR


@pytest.fixture
def sweep():
    """(loader counting its compositions, master config of a sweep, its jobs' overrides)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    from al_research.config import register_configs
    from al_research.sweeps.folders import sweep_jobs

    register_configs()

    def make(overrides: list[str]):
        loader = GlobalHydra.instance().hydra.config_loader
        master = loader.load_configuration("config", overrides=overrides,
                                           run_mode=RunMode.MULTIRUN)
        calls = []
        original = loader.load_sweep_config

        def counted(master_config, job):
            calls.append(list(job))
            return original(master_config, job)

        loader.load_sweep_config = counted
        return loader, master, sweep_jobs(master), calls, original

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        yield make


def _same(configs, loader, master, jobs):
    assert len(configs) == len(jobs)
    for job, config in zip(jobs, configs, strict=True):
        hydra = loader(master, job)
        assert OmegaConf.to_yaml(config) == OmegaConf.to_yaml(hydra), job
        assert OmegaConf.is_struct(config) and not OmegaConf.is_readonly(config.hydra)


def test_jobs_that_differ_in_values_are_set_on_a_copy_equal_to_hydras(sweep):
    from al_research.sweeps.composed import compose_all

    loader, master, jobs, calls, hydra = sweep([
        "experiment=article_seeds", "seed=range(0,2)", "model.lr=0.1,0.05",
        "+tracking.tags.note=a,b", "++stages.self_training.params.max_rounds=3"])
    assert len(jobs) == 3 * 2 * 2 * 2
    configs = compose_all(loader, master, jobs)
    # one job of each of the 3 strategies composed by Hydra, and the last one again to compare
    assert len(calls) == 6
    assert sorted({c[0] for c in calls}) == sorted(f"strategy={s}" for s in
                                                   ("full", "random", "least_confident"))
    _same(configs, hydra, master, jobs)
    last = configs[-1]
    assert (last.seed, last.model.lr, last.tracking.tags.note) == (1, 0.05, "b")
    assert list(last.hydra.overrides.task) == jobs[-1]
    assert "model.lr=0.05" in last.hydra.job.override_dirname
    assert "seed=1" in last.hydra.job.override_dirname


def test_lists_dicts_and_deletions_are_composed_by_hydra_for_every_job(sweep):
    from al_research.sweeps.composed import compose_all

    loader, master, jobs, calls, hydra = sweep([
        "experiment=article_seeds", "seed=range(0,2)", "model=mlp",
        "model.params.hidden=[8],[4,4]", "~stages.kmeans"])
    configs = compose_all(loader, master, jobs)
    assert len(calls) == len(jobs) == 12
    _same(configs, hydra, master, jobs)
    assert list(configs[-1].model.params.hidden) == [4, 4]


def test_a_copy_that_differs_from_hydras_is_said_and_every_job_composed_by_hydra(
        sweep, monkeypatch, caplog):
    from al_research.sweeps import composed

    loader, master, jobs, calls, hydra = sweep(["seed=range(0,3)"])
    derive = composed._derive

    def wrong(template, values, overrides):
        config = derive(template, values, overrides)
        config.model.lr = 0.5  # what a Hydra that sets values differently would give
        return config

    monkeypatch.setattr(composed, "_derive", wrong)
    with caplog.at_level(logging.WARNING, logger=composed.__name__):
        configs = composed.compose_all(loader, master, jobs)
    assert "differs from Hydra's (seed=2)" in caplog.text
    assert len(calls) == 2 + 3  # the template, the compared one, then every job
    _same(configs, hydra, master, jobs)
    assert {c.model.lr for c in configs} == {0.1}


def test_if_hydras_internals_moved_every_job_is_composed_by_hydra(sweep, monkeypatch, caplog):
    from al_research.sweeps import composed

    loader, master, jobs, calls, hydra = sweep(["seed=range(0,3)"])

    def moved(*args):
        raise AttributeError("'ConfigLoaderImpl' has no attribute '_apply_overrides_to_config'")

    monkeypatch.setattr(composed, "_derive", moved)
    with caplog.at_level(logging.WARNING, logger=composed.__name__):
        configs = composed.compose_all(loader, master, jobs)
    assert "from copies failed (AttributeError" in caplog.text
    _same(configs, hydra, master, jobs)
    assert [c.seed for c in configs] == [0, 1, 2]
