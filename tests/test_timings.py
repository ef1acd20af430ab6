"""Phase timings (al_research/process/timings.py) for benchmarks/breakdown.py: nothing is written
unless AL_RESEARCH_TIMINGS names a folder; a real run then records each round's phases inside
its job, and the breakdown nests them and splits arithmetic from overhead."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter

from al_research.process import timings
from tests.conftest import ROOT, SHORT, compose


def _breakdown():
    spec = importlib.util.spec_from_file_location("breakdown", ROOT / "benchmarks" /
                                                  "breakdown.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["breakdown"] = module
    spec.loader.exec_module(module)
    return module


def test_off_by_default_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv(timings.ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with timings.phase("fit"):
        pass
    timings.since("run_open", timings.mark())
    assert timings.mark() is None and list(tmp_path.iterdir()) == []


def test_a_run_records_its_rounds_inside_its_job(tmp_path, monkeypatch, store_uri):
    from al_research.experiment.runner import run

    folder = tmp_path / "timings"
    monkeypatch.setenv(timings.ENV, str(folder))
    run(compose([*SHORT, f"tracking.uri={store_uri}"]))  # 10 + 2 x 10 labels: 3 rounds
    [path] = folder.glob("*.jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    counts = Counter(line["phase"] for line in lines)
    assert counts["job"] == 1 and counts["fit"] == 3  # the label-fair refit is its stage's
    assert counts["select"] == 2 and counts["round_log"] == 3 and counts["predict"] == 3
    assert counts["stage:active_learning"] == counts["stage:label_fair"] == 1
    breakdown = _breakdown()
    recs = breakdown.load(folder)
    [job] = [r for r in recs if r.phase == "job"]
    nested = breakdown.inside(job)
    assert len(nested) == len(recs)  # every phase of a run is inside its job
    assert all(r.own >= 0 for r in recs)
    assert abs(sum(r.own for r in nested) - job.wall) < 1e-3  # own times add up to the job
    [per_job] = breakdown.jobs(recs)
    arithmetic = sum(r.own for r in nested if r.phase in timings.ARITHMETIC)
    assert 0 < per_job["arithmetic"] == arithmetic < job.wall
    assert per_job["rounds"] == sum(r.own for r in nested if r.phase in ("fit", "predict",
                                                                         "select"))
