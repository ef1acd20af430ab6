"""The configured criteria over one run: `StoppingMonitor` is the loop's stopping hook.

Each round (after the fit and the selection) it asks every criterion for its reading, logs each
defined value as `stopping/<name>` with the labelled count as the step, and the first round a
criterion fires as `stopping/<name>/fired_at` (= the labelled count) and the tag
`stopping.<name>`; at the end of the loop the criteria that never fired are tagged "never".
With `stopping.action=stop` it tells the loop to end at the first round a criterion of
`stopping.stop_on` (any, when empty) fires: that round's batch is not labelled.

The stop set is drawn from its own random stream of the seed (`STOP_SET_STREAM`), never from the
loop's: recording changes no pick and no accuracy.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from al_research.config import StopAction, StoppingConfig, build
from al_research.stopping.base import Criterion, Observation, Reading
from al_research.tracking.names import (
    NEVER,
    Tag,
    stopping_fired_metric,
    stopping_metric,
    stopping_tag,
)

log = logging.getLogger("al_research")

# np.random.default_rng([seed, STOP_SET_STREAM]): the split uses stream 0, the initial set 1,
# the loop 2; this one is the stop set's alone
STOP_SET_STREAM = 5709


def draw_stop_set(seed: int, pool_size: int, size: int) -> np.ndarray:
    """`size` distinct pool positions (all of them if the pool is smaller), ascending, from the
    seed's own stop-set stream: the same for every arm of a seed."""
    rng = np.random.default_rng([seed, STOP_SET_STREAM])
    return np.sort(rng.choice(pool_size, min(size, pool_size), replace=False)).astype(np.int64)


def build_criteria(conf: StoppingConfig) -> dict[str, Criterion]:
    """Each configured criterion, by name, in the config's order."""
    return {name: build(c._target_, c.params, f"stopping.criteria.{name}")
            for name, c in conf.criteria.items()}


class StoppingMonitor:
    """The loop's stopping hook for one run (see the module doc)."""

    def __init__(self, conf: StoppingConfig, criteria: dict[str, Criterion], stop_set: np.ndarray,
                 n_classes: int, recorder: Any, model_name: str = "the model",
                 offers: frozenset | None = None) -> None:
        from al_research.strategies.base import check_capabilities

        if offers is not None:  # the config checked it before TensorFlow loaded, if it could
            for name, criterion in criteria.items():
                check_capabilities(frozenset(criterion.needs), offers,
                                   f"stopping criterion {name!r}", model_name)
        self.conf = conf
        self.criteria = criteria
        self.stop_set = stop_set
        self.n_classes = n_classes
        self.recorder = recorder
        self.fired_at: dict[str, int] = {}
        self.readings: dict[str, list[tuple[int, Reading]]] = {name: [] for name in criteria}
        self.stopped_at: int | None = None
        self.stopped_by: list[str] = []
        self.stop_on = list(conf.stop_on) or list(criteria)

    @classmethod
    def for_experiment(cls, exp: Any) -> StoppingMonitor | None:
        """The monitor of an experiment's run, or None when it configures no criterion."""
        conf = exp.conf.stopping
        if not conf.criteria:
            return None
        stop_set = draw_stop_set(exp.conf.seed, exp.pool.size, conf.stop_set_size)
        return cls(conf, build_criteria(conf), stop_set, exp.split.n_classes, exp.recorder,
                   f"model {exp.conf.model.name!r}", exp.model.capabilities)

    def __call__(self, model: Any, pool: Any, result: Any, proba: np.ndarray) -> bool:
        """The loop's hook, after a round's fit and selection: True ends the loop here."""
        from al_research.runtime import tf

        def predict(positions: np.ndarray) -> np.ndarray:
            return np.asarray(model.predict_proba(tf.gather(pool.x, positions)))

        obs = Observation(result.n_labelled, float(result.val_accuracy), self.n_classes,
                          pool.unlabelled, proba, np.asarray(result.selected, np.int64),
                          self.stop_set, predict)
        return self.observe(obs)

    def observe(self, obs: Observation) -> bool:
        """Read every criterion on `obs`, log what they say; True: the loop ends here."""
        from al_research.process.signals import shielded

        step = obs.n_labelled
        metrics: dict[str, float] = {}
        tags: dict[str, str] = {}
        fired_now: list[str] = []
        firsts: list[str] = []  # the criteria that fire for the first time this round
        for name, criterion in self.criteria.items():
            reading = criterion.observe(obs)
            self.readings[name].append((step, reading))
            if math.isfinite(reading.value):
                metrics[stopping_metric(name)] = reading.value
            if reading.fires:
                fired_now.append(name)
                if name not in self.fired_at:
                    self.fired_at[name] = step
                    firsts.append(name)
                    metrics[stopping_fired_metric(name)] = step
                    tags[stopping_tag(name)] = str(step)
        with shielded():  # a stop signal waits: the round's readings land whole, or not
            if metrics:
                self.recorder.log_metrics(metrics, step=step)
            if tags:
                self.recorder.set_tags(tags)
        for name in firsts:
            value = self.readings[name][-1][1].value
            log.info("stopping: %s fires at %d labels (value %.4g)", name, step, value)
        stoppers = [name for name in fired_now if name in self.stop_on]
        # a stop ends the loop before the round's batch is labelled: on the last round (no
        # batch) there is nothing left to save
        if (self.conf.action == StopAction.stop and stoppers and len(obs.selected)
                and self.stopped_at is None):
            self.stopped_at, self.stopped_by = step, stoppers
            return True
        return False

    def finish(self, budget: int) -> None:
        """After the loop ended (not when it was interrupted): the criteria that never fired are
        tagged "never", and a stop the criteria caused is tagged and said."""
        never = {stopping_tag(name): NEVER for name in self.criteria if name not in self.fired_at}
        if self.stopped_at is not None:
            never[Tag.STOPPED_BY] = ",".join(self.stopped_by)
        if never:
            self.recorder.set_tags(never)
        if self.stopped_at is not None:
            log.info("stopping.action=stop: %s fired at %d labels: the loop ended there, %d of "
                     "the budget's %d labels not spent", " and ".join(self.stopped_by),
                     self.stopped_at, budget - self.stopped_at, budget)

