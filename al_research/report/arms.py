"""Arms are configurations: runs grouped by every config key that varies, seed excepted.

A run's configuration is its MLflow params (the flattened resolved config). The keys that vary
across the selected runs are the *factors*; each factor's *reference* value is its most common
one (ties: the value of the lowest Hydra job number, i.e. the first value of the sweep). An arm
is one strategy with one value per factor, named by its strategy and the factors where it leaves
the reference, e.g. `least_confident · model.warm_start=false`. Two configurations are never
merged; two runs of one configuration and seed are duplicates (the newest is used, the report
says so). Each arm is paired, seed by seed, with the random arm of the same configuration.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from al_research.config import HOW_KEYS as RESUME_EXCLUDED
from al_research.report.runs import RunRecord, seed_key
from al_research.report.stats import Estimate, t_estimate
from al_research.tracking.names import Param, Tag

BASELINE = "random"
SEPARATOR = " · "
TEST_SELECTED_MARK = " [test-selected]"
# keys that never define an arm: where results go and how runs are run (the same top-level keys
# the resume hash leaves out: tracking, runtime, rerun, hydra), the seed, the strategy itself
NON_ARM_PREFIXES = tuple(f"{key}." for key in RESUME_EXCLUDED)
NON_ARM_KEYS = frozenset({Param.SEED, Param.STRATEGY, *RESUME_EXCLUDED})
STRATEGY_PREFIX = "strategy."  # a strategy's own settings: an arm key only if they vary within it
ABSENT = "(absent)"  # a key some runs' configs do not have
LEGACY_TAG_KEYS = {"model.name": Tag.MODEL, "data.name": Tag.DATA}  # runs logged without params
# the ground truth's own initial set (the whole pool, set by strategy=full): never what tells a
# ground-truth arm apart, nor a factor because of it
GROUND_TRUTH_OWN = "initial."


def param_value(value: object) -> str:
    """A param as the command line writes it: true/false/null rather than True/False/None."""
    text = str(value)
    return {"True": "true", "False": "false", "None": "null"}.get(text, text)


def defines_arm(key: str) -> bool:
    """Whether a config key can tell two arms apart (a `_target_` follows its group's name)."""
    return (key not in NON_ARM_KEYS and not key.startswith(NON_ARM_PREFIXES)
            and not key.endswith("_target_"))


def run_config(record: RunRecord) -> dict[str, str]:
    """The keys of a run's config that can define an arm (legacy runs: model and data tags)."""
    if record.params:
        return {k: param_value(v) for k, v in record.params.items() if defines_arm(k)}
    return {k: record.tags[tag] for k, tag in LEGACY_TAG_KEYS.items() if tag in record.tags}


def own_key(record: RunRecord, key: str) -> bool:
    """A key the run's arm sets for itself: the ground truth's initial set."""
    return record.ground_truth and key.startswith(GROUND_TRUTH_OWN)


@dataclass(frozen=True)
class Factors:
    """The keys that vary across the selected runs, and each one's reference value."""

    reference: dict[str, str]  # factor key -> its reference value

    @property
    def keys(self) -> list[str]:
        return list(self.reference)

    def deviations(self, config: Mapping[str, str]) -> dict[str, str]:
        """The factors where `config` leaves the reference."""
        return {k: config.get(k, ABSENT) for k, ref in self.reference.items()
                if config.get(k, ABSENT) != ref}

    def text(self) -> str:
        return ", ".join(f"`{k}={v}`" for k, v in self.reference.items()) or "none"


def _job_num(record: RunRecord) -> float:
    try:
        return float(record.tags.get(Tag.JOB_NUM, "inf"))
    except ValueError:
        return float("inf")


def find_factors(records: Sequence[RunRecord]) -> Factors:
    """Keys that vary across the runs (a strategy's own keys: within one strategy)."""
    configs = [(r, run_config(r)) for r in records]
    keys = sorted(set().union(*(c for _, c in configs))) if configs else []
    by_strategy: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r, c in configs:
        by_strategy[r.strategy].append(c)
    reference: dict[str, str] = {}
    for key in keys:
        if key.startswith(STRATEGY_PREFIX):
            varies = any(len({c.get(key, ABSENT) for c in cs}) > 1 for cs in by_strategy.values())
        else:
            varies = len({c.get(key, ABSENT) for r, c in configs if not own_key(r, key)}) > 1
        if not varies:
            continue
        counts = Counter(c.get(key, ABSENT) for r, c in configs if not r.ground_truth)
        counts = counts or Counter(c.get(key, ABSENT) for _, c in configs)
        first_job = {}
        for _, c in sorted(configs, key=lambda rc: (_job_num(rc[0]), rc[0].start_time)):
            first_job.setdefault(c.get(key, ABSENT), len(first_job))
        reference[key] = min(counts, key=lambda v: (-counts[v], first_job.get(v, 1 << 30), v))
    for key in implied_by_choice(list(reference), [c for _, c in configs]):
        del reference[key]
    return Factors(reference)


CHOICE_GROUPS = ("model", "data", "initial")  # groups whose `<group>.name` names the choice


def implied_by_choice(keys: Sequence[str], configs: Sequence[Mapping[str, str]]) -> list[str]:
    """Keys that vary only because a group's choice varies (`model.lr` when the sweep is over
    `model=softmax,mlp`): within each choice they take one value, so `model.name` says it all
    and the arm is named `model=mlp`, not by every key of the MLP's config."""
    implied = []
    for group in CHOICE_GROUPS:
        choice = f"{group}.name"
        if choice not in keys:
            continue
        for key in keys:
            if not key.startswith(f"{group}.") or key == choice:
                continue
            values: dict[str, set[str]] = defaultdict(set)
            for c in configs:
                values[c.get(choice, ABSENT)].add(c.get(key, ABSENT))
            if all(len(v) == 1 for v in values.values()):
                implied.append(key)
    return implied


def deviation_texts(deviations: Mapping[str, str]) -> list[str]:
    """`key=value` each; a group's choice reads as on the command line: `model=mlp`."""
    def short(key: str) -> str:
        group = key[: -len(".name")] if key.endswith(".name") else ""
        return group if group in CHOICE_GROUPS else key

    return [f"{short(k)}={v}" for k, v in deviations.items()]


def arm_name(strategy: str, deviations: Mapping[str, str]) -> str:
    """`strategy · key=value ...` (see `deviation_texts`)."""
    return SEPARATOR.join([strategy, *deviation_texts(deviations)])


def deviations(record: RunRecord, factors: Factors) -> dict[str, str]:
    """The factors where the run's configuration leaves the reference (its arm's own keys
    aside)."""
    return {k: v for k, v in factors.deviations(run_config(record)).items()
            if not own_key(record, k)}


def assign_arms(records: Sequence[RunRecord]) -> Factors:
    """Set each run's arm (its strategy and its deviations from the reference); the factors."""
    factors = find_factors(records)
    for r in records:
        r.arm = arm_name(r.strategy, deviations(r, factors))
    return factors


def deduplicate(records: Sequence[RunRecord]) -> tuple[list[RunRecord], list[str]]:
    """The newest run per (arm, seed), and a note for each duplicate left out."""
    notes: list[str] = []
    newest: dict[tuple[str, str], RunRecord] = {}
    for r in sorted(records, key=lambda r: r.start_time):
        key = (r.arm, r.seed)
        if key in newest:
            notes.append(f"duplicate runs: {r.arm} has more than one run for seed {r.seed} "
                         f"(the same configuration); using the newest ({r.run_id}), ignoring "
                         f"{newest[key].run_id}")
        newest[key] = r
    return sorted(newest.values(), key=lambda r: (r.arm, seed_key(r.seed))), notes


@dataclass
class Arm:
    """The runs of one configuration across seeds."""

    name: str
    runs: list[RunRecord]
    deviations: dict[str, str] = field(default_factory=dict)  # factors off the reference

    @property
    def strategy(self) -> str:
        return self.runs[0].strategy

    @property
    def ground_truth(self) -> bool:
        return self.runs[0].ground_truth

    @property
    def test_selected(self) -> bool:
        """Some run of the arm early-stopped on the test set: its test figures are optimistic."""
        return any(r.test_selected for r in self.runs)

    @property
    def label(self) -> str:
        """The name as every table and plot shows it: test-selected arms are marked."""
        return self.name + (TEST_SELECTED_MARK if self.test_selected else "")

    @property
    def seeds(self) -> list[str]:
        return [r.seed for r in self.runs]

    def tag(self, key: str) -> str | None:
        return self.runs[0].tags.get(key)

    def param(self, key: str) -> str | None:
        value = self.runs[0].params.get(key)
        return None if value is None else param_value(value)

    def by_seed(self) -> dict[str, RunRecord]:
        return {r.seed: r for r in self.runs}

    def steps(self) -> list[int]:
        return sorted(set().union(*(r.curve for r in self.runs)))

    def common_steps(self) -> list[int]:
        common = set.intersection(*(set(r.curve) for r in self.runs))
        return sorted(common) or self.steps()

    def step_estimates(self) -> dict[int, Estimate]:
        return {s: t_estimate([r.curve[s] for r in self.runs if s in r.curve])
                for s in self.steps()}

    def self_training_runs(self) -> list[RunRecord]:
        return [r for r in self.runs if r.self_training_final is not None]

    def metric_runs(self, metric: str) -> list[RunRecord]:
        return [r for r in self.runs if metric in r.metrics]


def group_arms(records: Sequence[RunRecord], factors: Factors | None = None) -> list[Arm]:
    """Runs grouped by arm: the reference configuration first, random before other strategies
    within a configuration, the ground truth last."""
    factors = factors or Factors({})
    groups: dict[str, list[RunRecord]] = defaultdict(list)
    for r in records:
        groups[r.arm].append(r)
    arms = [Arm(name, runs, deviations(runs[0], factors)) for name, runs in groups.items()]

    def order(arm: Arm) -> tuple:
        return (arm.ground_truth, len(arm.deviations), sorted(arm.deviations.items()),
                arm.strategy != BASELINE, arm.name)

    return sorted(arms, key=order)


def baseline_for(arm: Arm, arms: Sequence[Arm]) -> tuple[Arm | None, str]:
    """The random arm of the same configuration, or the closest one with a note saying where
    it differs; (None, why) when there is none or the choice is ambiguous."""
    candidates = [a for a in arms if a.strategy == BASELINE and a is not arm
                  and not a.ground_truth]
    if not candidates:
        return None, "no random runs to compare with"
    for a in candidates:
        if a.deviations == arm.deviations:
            return a, ""

    def differing(a: Arm) -> list[str]:  # factors where the two configurations differ
        return sorted(k for k in set(arm.deviations) | set(a.deviations)
                      if arm.deviations.get(k) != a.deviations.get(k))

    best = min(len(differing(a)) for a in candidates)
    closest = [a for a in candidates if len(differing(a)) == best]
    if len(closest) > 1:
        return None, (f"no random arm of the same configuration; {len(closest)} equally close "
                      f"ones: not compared")
    a = closest[0]
    return a, (f"no random arm of the same configuration: compared with {a.name} "
               f"(differs in {', '.join(differing(a))})")


def pairing_notes(arms: Sequence[Arm]) -> list[str]:
    """A note per learning-curve arm missing seeds that other arms have."""
    curve_arms = [a for a in arms if not a.ground_truth]
    union = set().union(*(set(a.seeds) for a in curve_arms)) if curve_arms else set()
    notes = []
    for a in curve_arms:
        missing = sorted(union - set(a.seeds), key=seed_key)
        if missing:
            notes.append(f"seeds do not pair: {a.name} has no run for seed(s) "
                         f"{', '.join(missing)} that other arms have; comparisons use "
                         f"the seeds present in both")
    return notes


def paired(arm: Arm, other: Arm, value: Callable[[RunRecord], float | None],
           other_value: Callable[[RunRecord], float | None] | None = None
           ) -> tuple[list[str], np.ndarray, int]:
    """Seeds both arms have a value for, the differences arm − other on them, and how many
    seeds only one of them has."""
    other_value = other_value or value
    ours = {s: v for s, r in arm.by_seed().items() if (v := value(r)) is not None}
    theirs = {s: v for s, r in other.by_seed().items() if (v := other_value(r)) is not None}
    seeds = sorted(set(ours) & set(theirs), key=seed_key)
    diffs = np.array([ours[s] - theirs[s] for s in seeds], dtype=float)
    return seeds, diffs, len(set(ours) ^ set(theirs))
