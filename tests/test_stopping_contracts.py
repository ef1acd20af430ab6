"""Contracts every yaml in conf/stopping/ must meet, found from the folder: a new criterion's
yaml is tested without editing a test (as tests/test_contracts.py does for the other groups).

A criterion yaml (`# @package stopping.criteria.<name>`) composes to exactly that one criterion,
built from its `_target_` into a `Criterion` that declares what it needs and reads a run of
rounds reproducibly; a selection yaml (`none`, `all`) composes to criteria of the folder."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from al_research.config import StopAction, validate
from al_research.models.base import Capability
from al_research.stopping.base import Criterion, Observation, Reading
from al_research.stopping.monitor import build_criteria
from tests.conftest import CONF_DIR, compose

SELECTIONS = ("none", "all")  # the yamls that select criteria rather than define one


def names() -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / "stopping").glob("*.yaml"))


def criteria_names() -> list[str]:
    return [n for n in names() if n not in SELECTIONS]


def rounds(n_rounds: int = 7, pool: int = 60, n_classes: int = 4, seed: int = 0):
    """Observations of a run that grows more confident: the pool shrinks by a batch of 5 each
    round, the stop set is 20 fixed items, validation accuracy rises then stalls."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(pool, n_classes))
    unlabelled = np.arange(pool)
    for i in range(n_rounds):
        scaled = logits * (1 + 3 * i)  # sharper each round: confidence grows
        proba = np.exp(scaled - scaled.max(axis=1, keepdims=True))
        proba /= proba.sum(axis=1, keepdims=True)
        selected = unlabelled[:5] if i < n_rounds - 1 else np.empty(0, np.int64)
        yield Observation(10 + 5 * i, min(0.5 + 0.1 * i, 0.8), n_classes, unlabelled.copy(),
                          proba[unlabelled], selected, np.arange(20),
                          lambda positions, p=proba: p[positions])
        unlabelled = unlabelled[5:]


@pytest.mark.parametrize("name", criteria_names())
def test_every_criterion_is_one_class_that_reads_rounds_reproducibly(name):
    conf = validate(compose([f"stopping={name}"]))
    assert list(conf.stopping.criteria) == [name], "its package must be stopping.criteria.<name>"
    assert conf.stopping.action == StopAction.record  # a criterion yaml only records
    (criterion,) = build_criteria(conf.stopping).values()
    assert isinstance(criterion, Criterion)
    assert dataclasses.is_dataclass(type(criterion).Params)
    assert all(isinstance(c, Capability) for c in type(criterion).needs)

    def read() -> list[Reading]:
        fresh = build_criteria(conf.stopping)[name]  # one instance per run: state starts anew
        return [fresh.observe(obs) for obs in rounds()]

    first, again = read(), read()
    assert all(isinstance(r, Reading) and isinstance(r.fires, bool) for r in first)
    assert any(math.isfinite(r.value) for r in first), f"{name} never gave a value"
    assert all(math.isfinite(r.value) or not r.fires for r in first)  # no firing without one
    def key(r: Reading) -> tuple:
        return ("undefined" if math.isnan(r.value) else r.value, r.fires)

    assert [key(r) for r in first] == [key(r) for r in again]


def test_none_selects_no_criterion_and_is_the_default():
    assert validate(compose([])).stopping.criteria == {}
    assert validate(compose(["stopping=none"])).stopping == validate(compose([])).stopping


def test_all_selects_every_criterion_of_the_folder_and_only_records():
    conf = validate(compose(["stopping=all"])).stopping
    assert sorted(conf.criteria) == criteria_names()
    assert conf.action == StopAction.record and conf.stop_on == []
