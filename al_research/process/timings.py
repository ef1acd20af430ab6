"""Where a process's time goes, by phase, for benchmarks/breakdown.py.

When `AL_RESEARCH_TIMINGS` names a folder, every `phase(name)` block appends one JSON line to
`<folder>/<pid>.jsonl`: the phase, its start (Unix time), wall and CPU seconds of the process.
Off (the default), `phase` is a no-op context manager: one environment lookup per call.
Phases nest (a `job` holds its `fit`s); the breakdown sums leaves.

The phases and what they hold (the *arithmetic* ones are the computation itself; everything
else is overhead; `ARITHMETIC` lists them):

- `interpreter`: Python started and `al_research` imported, up to the command line's start;
  `hydra`: Hydra's own work (composing, logging, callbacks: its phases apart); `exit`: from the
  command's end to the process's (exit handlers)
- `cli_import`: the command line importing Hydra and the harness's config (`al_research.app`)
- `job_setup`: a job's config checked, the store reached, resume's check; `import`: the job
  importing TensorFlow, MLflow and the runner (nothing in a forked worker that has them)
- `job`: one `run(cfg)`, from its config to its run ended (holds every phase below but
  `sweep_start` and `report`)
- `split`, `model_build`, `store`, `run_open`, `run_close`: data and split; TF set-up and the
  model; the store reached and prepared; the run created with its params, config, split and
  tags; the run ended (the recorder flushed)
- `fit`, `predict`, `select`, `stopping`: a round's training; its probabilities, embeddings and
  held-out scores; the strategy's query; the stopping criteria
- `round_log`: logging one round (metrics, histograms, rounds.csv); `plots`: the curves and step
  images at the loop's end
- `initial`, `kmeans`: the initial selection; k-means's clustering (its images are overhead,
  its baseline's fit a `fit`)
- `stage:<name>`: each stage as a whole (its own time, nested phases apart, is overhead but for
  `stage:self_training` and `stage:label_fair`, whose own time is their computation)
- `run_start`: one run's config checked and its store reached (made if new);
  `sweep_start`: a sweep's configs checked, its store and parent run, its workers started;
  `report`: the sweep's report
- `label`: no time; names what follows in its process (a job's run name, `label(text)`)
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV = "AL_RESEARCH_TIMINGS"
# phases whose own time (children apart) is computation, not bookkeeping
ARITHMETIC = frozenset({"fit", "predict", "select", "stopping", "initial", "kmeans",
                        "stage:self_training", "stage:label_fair"})


def _folder() -> Path | None:
    value = os.environ.get(ENV)
    return Path(value) if value else None


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the block as phase `name` when `AL_RESEARCH_TIMINGS` is set (module doc)."""
    folder = _folder()
    if folder is None:
        yield
        return
    start, wall, cpu = time.time(), time.perf_counter(), time.process_time()
    _OUT.depth += 1
    try:
        yield
    finally:
        _OUT.depth -= 1
        record(name, start, time.perf_counter() - wall, time.process_time() - cpu, folder)


Mark = tuple[float, float, float]  # Unix time, perf_counter, process_time


def mark() -> Mark | None:
    """Now, for `since` (None when timings are off)."""
    if _folder() is None:
        return None
    return time.time(), time.perf_counter(), time.process_time()


def since(name: str, start: Mark | None) -> None:
    """Record phase `name` from `start` (a `mark()`) to now: for phases a block cannot hold."""
    if start is not None:
        record(name, start[0], time.perf_counter() - start[1], time.process_time() - start[2])


def label(text: str) -> None:
    """Name what the process does now (a job's run name): a zero-length `label` phase."""
    if _folder() is not None:
        record("label", time.time(), 0.0, 0.0, label=text)


def record(name: str, start: float, wall: float, cpu: float, folder: Path | None = None,
           label: str | None = None) -> None:
    """Append one phase's line (a phase timed elsewhere, e.g. from the process's start)."""
    folder = folder or _folder()
    if folder is None:
        return
    _OUT.lines.append(json.dumps({"phase": name, "start": start, "wall": wall, "cpu": cpu,
                                  "pid": os.getpid(), **({"label": label} if label else {})}))
    if _OUT.depth == 0:  # an outermost phase ended: its lines (and its nested ones') written
        _OUT.write(folder)


class _Lines:
    """A process's phase lines, written when its outermost phase ends (a job's ~250 phases:
    one file write, not an open and close each, which the breakdown counted as the job's)."""

    def __init__(self) -> None:
        self.depth = 0  # phases open now
        self.lines: list[str] = []

    def write(self, folder: Path) -> None:
        if not self.lines:
            return
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{os.getpid()}.jsonl", "a") as out:
            out.write("\n".join(self.lines) + "\n")
        self.lines.clear()


_OUT = _Lines()


_END: list[Mark] = []


def process_phases() -> None:
    """The command line's own phases: `interpreter` (from the process's creation to now: Python,
    `import al_research`) now, and `exit` (from `ended()` to the last exit handler) at exit."""
    if _folder() is None:
        return
    import atexit

    try:  # Linux: the process's start in clock ticks since boot, against the boot clock now
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
        record("interpreter", time.time() - age, age, time.process_time())
    except (OSError, ValueError, IndexError, AttributeError):  # elsewhere: left out
        pass
    atexit.register(lambda: since("exit", _END[0]) if _END else None)  # first in, last run


def ended() -> None:
    """The command's work is done: what follows until the process ends is its `exit`."""
    if _folder() is not None:
        _END[:] = [mark()]
