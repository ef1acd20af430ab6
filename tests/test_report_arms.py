"""Arms from configurations where the ground truth sets its own initial set (strategy=full sets
`initial=whole_pool`): that is what the ground truth is, not a factor of the sweep."""

from __future__ import annotations

from al_research.report.arms import assign_arms, group_arms
from al_research.report.runs import RunRecord


def _record(i: int, strategy: str, seed: int, initial: str, **params: str) -> RunRecord:
    ground_truth = strategy == "full"
    tags = {"strategy": strategy, "seed": str(seed), "job_num": str(i),
            "ground_truth": "true" if ground_truth else "false"}
    base = {"seed": str(seed), "strategy.name": strategy, "budget": "30",
            "initial.name": initial, "initial._target_": f"x.{initial}"}
    return RunRecord(f"run{i}", f"run{i}", "1", i, tags, {10: 0.5}, 0.5, None,
                     params={**base, **params})


def test_the_ground_truths_own_initial_set_is_not_a_factor() -> None:
    records = [_record(0, "random", 0, "random"), _record(1, "least_confident", 0, "random"),
               _record(2, "full", 0, "whole_pool")]
    factors = assign_arms(records)
    assert factors.keys == []
    assert [r.arm for r in records] == ["random", "least_confident", "full"]
    assert [a.deviations for a in group_arms(records, factors)] == [{}, {}, {}]


def test_an_initial_set_swept_is_a_factor_named_as_on_the_command_line() -> None:
    records = [_record(0, "random", 0, "random"), _record(1, "random", 1, "random"),
               _record(2, "random", 0, "first"), _record(3, "full", 0, "whole_pool")]
    factors = assign_arms(records)
    assert factors.reference == {"initial.name": "random"}
    assert [r.arm for r in records] == ["random", "random", "random · initial=first", "full"]
