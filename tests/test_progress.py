"""Sweep progress: Hydra's own job expansion, and the time left weighted by arm."""

import pytest
from omegaconf import OmegaConf

from al_research.sweeps.folders import sweep_jobs
from al_research.sweeps.progress import arm_of, duration, progress_line, time_left


def test_the_plan_is_hydras_expansion_in_launch_order():
    config = OmegaConf.create({"hydra": {
        "sweeper": {"params": {"strategy": "full,random", "seed": "range(0,3)"}},
        "overrides": {"task": ["budget=30"]}}})
    plan = [arm_of(job) for job in sweep_jobs(config)]
    assert plan == ["strategy=full"] * 3 + ["strategy=random"] * 3


def test_the_arm_is_what_the_cost_depends_on():
    assert arm_of(["seed=3", "strategy=margin", "model=mlp"]) == "strategy=margin model=mlp"
    assert arm_of(["seed=3"]) == "job"
    varying = ["batch_size", "strategy", "seed"]  # the sweep's varying keys: all but the seed
    assert arm_of(["batch_size=50", "strategy=bald", "seed=2", "model=mlp"],
                  varying) == "batch_size=50 strategy=bald"


def test_an_arm_not_seen_yet_is_estimated_from_its_values_apart():
    done = [{"num": 0, "arm": "b=10 s=lc", "seconds": 20.0},
            {"num": 1, "arm": "b=10 s=random", "seconds": 10.0},
            {"num": 2, "arm": "b=50 s=random", "seconds": 2.0}]
    plan = ["b=10 s=lc", "b=10 s=random", "b=50 s=random", "b=50 s=lc"]
    overall = 32 / 3
    lc, b50 = 20.0 / overall, 2.0 / overall  # each value's mean over all jobs' mean
    assert time_left(plan, done, 1) == pytest.approx(overall * lc * b50)  # 3.75 s, not 10.7


def test_time_left_weights_remaining_jobs_by_their_arm():
    plan = ["a", "a", "b", "b", "c"]
    done = [{"num": 0, "arm": "a", "seconds": 10.0}, {"num": 2, "arm": "b", "seconds": 2.0}]
    # left: one a (10 s), one b (2 s), one c (no c finished: the mean of all, 6 s), 2 at once
    assert time_left(plan, done, concurrency=2) == pytest.approx((10 + 2 + 6) / 2)
    assert time_left(plan, [], concurrency=2) is None


def test_progress_line_counts_failures_and_says_the_time_left():
    plan = ["a", "a", "a"]
    done = [{"num": 0, "arm": "a", "seconds": 30.0, "status": "COMPLETED"},
            {"num": 1, "arm": "a", "seconds": 30.0, "status": "FAILED"}]
    line = progress_line(plan, done, 1, started=0.0, now=95.0)
    assert line == "[sweep] 2/3 jobs done (1 failed) · 1m35s elapsed · about 30s left"
    assert duration(3725) == "1h02m"


def test_the_last_line_gives_the_sweeps_own_reason_when_the_store_has_none(tmp_path):
    import json

    from al_research.sweeps import ending

    folder = tmp_path / "sweep"
    (folder / ".progress").mkdir(parents=True)
    (folder / ".progress" / "done.jsonl").write_text(
        json.dumps({"num": 0, "arm": "job", "seconds": 1.0, "status": "COMPLETED"}) + "\n"
        + json.dumps({"num": 1, "arm": "job", "seconds": 0.7, "status": "FAILED",
                      "reason": "AttributeError: 'PoolCache' object has no attribute 'hac'"})
        + "\n")
    ending.begin(folder, "sqlite:///x.db", [["seed=0"], ["seed=1"]])
    try:  # the store's account: the failed run has no failure tag
        ending.record_jobs([{"job": 0, "status": "FINISHED", "overrides": "seed=0"},
                            {"job": 1, "status": "FAILED", "overrides": "seed=1"}])
        line = ending.last_line(RuntimeError("job failed"))
    finally:
        ending._sweep = None
    assert line.startswith("1 of 2 jobs finished; job #1 (seed=1) FAILED: AttributeError: "
                           "'PoolCache' object has no attribute 'hac'; run the same command")
