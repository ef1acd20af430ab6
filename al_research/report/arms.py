"""Grouping runs into arms (one configuration across seeds) and pairing arms with random."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from al_research.report.runs import RunRecord, seed_key
from al_research.report.stats import Estimate, t_estimate
from al_research.tracking.names import Tag, is_true

BASELINE = "random"
ST_ARM_SUFFIX = "+self-training"  # arm name when one strategy has runs with and without


def assign_arms(records: Sequence[RunRecord]) -> None:
    """Name each run's arm: its strategy, plus model/data when those vary in the set, plus
    `+self-training` when one strategy has runs with and without self-training."""
    vary = [k for k in (Tag.MODEL, Tag.DATA) if len({r.tags.get(k) for r in records}) > 1]
    st_by_strategy: dict[str, set[str]] = defaultdict(set)
    for r in records:
        st_by_strategy[r.strategy].add(r.tags.get(Tag.SELF_TRAINING, "false"))
    for r in records:
        name = "/".join([r.strategy, *(r.tags.get(k, "?") for k in vary)])
        if len(st_by_strategy[r.strategy]) > 1 and is_true(r.tags.get(Tag.SELF_TRAINING)):
            name += ST_ARM_SUFFIX
        r.arm = name


def deduplicate(records: Sequence[RunRecord]) -> tuple[list[RunRecord], list[str]]:
    """The newest run per (arm, seed), and a note for each older one left out."""
    notes: list[str] = []
    newest: dict[tuple[str, str], RunRecord] = {}
    for r in sorted(records, key=lambda r: r.start_time):
        key = (r.arm, r.seed)
        if key in newest:
            notes.append(f"{r.arm}: more than one run for seed {r.seed}; using the newest "
                         f"({r.run_id}), ignoring {newest[key].run_id}")
        newest[key] = r
    return sorted(newest.values(), key=lambda r: (r.arm, seed_key(r.seed))), notes


@dataclass
class Arm:
    """The runs of one configuration across seeds."""

    name: str
    runs: list[RunRecord]

    @property
    def strategy(self) -> str:
        return self.runs[0].strategy

    @property
    def ground_truth(self) -> bool:
        return self.runs[0].ground_truth

    @property
    def seeds(self) -> list[str]:
        return [r.seed for r in self.runs]

    def tag(self, key: str) -> str | None:
        return self.runs[0].tags.get(key)

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


def group_arms(records: Sequence[RunRecord]) -> list[Arm]:
    """Runs grouped by their arm name: random first, the ground truth last."""
    groups: dict[str, list[RunRecord]] = defaultdict(list)
    for r in records:
        groups[r.arm].append(r)

    def order(item: tuple[str, list[RunRecord]]) -> tuple[int, str]:
        first = item[1][0]
        return (2 if first.ground_truth else 0 if first.strategy == BASELINE else 1, item[0])

    return [Arm(name, runs) for name, runs in sorted(groups.items(), key=order)]


def baseline_for(arm: Arm, arms: Sequence[Arm]) -> Arm | None:
    """The random arm on the same model and data (preferring one without self-training)."""
    candidates = [a for a in arms if a.strategy == BASELINE and a is not arm
                  and not a.ground_truth
                  and a.tag(Tag.MODEL) == arm.tag(Tag.MODEL)
                  and a.tag(Tag.DATA) == arm.tag(Tag.DATA)]
    candidates.sort(key=lambda a: a.name.endswith(ST_ARM_SUFFIX))
    return candidates[0] if candidates else None


def pairing_notes(arms: Sequence[Arm]) -> list[str]:
    """A note per learning-curve arm missing seeds that other arms have."""
    curve_arms = [a for a in arms if not a.ground_truth]
    union = set().union(*(set(a.seeds) for a in curve_arms)) if curve_arms else set()
    notes = []
    for a in curve_arms:
        missing = sorted(union - set(a.seeds), key=seed_key)
        if missing:
            notes.append(f"seeds do not pair: {a.name} has no run for seed(s) "
                         f"{', '.join(missing)} that other strategies have; comparisons use "
                         f"the seeds present in both")
    return notes
