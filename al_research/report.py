"""Seed-averaged comparison of strategies: curves with 95% CIs, paired tests, a summary run.

    python -m al_research.report --sweep latest --experiment article-seeds
    al-research report --sweep multirun/2026-11-24/03-10-00

Reads FINISHED runs from MLflow (never summary runs), groups them by strategy (and by model and
data when those differ), pairs them by seed, writes summary.md, CSVs and two plots to the out
folder, and logs them to a `summary-...` run in the same experiment.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import re
import sys
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats
from scipy.integrate import trapezoid

from al_research.tracking import mlflow_run, resolve_tracking_uri

log = logging.getLogger(__name__)

CURVE_METRIC = "test_accuracy"
FINAL_METRIC = "final_test_accuracy"
SELF_TRAINING_FINAL = "self_training/final_test_accuracy"
BASELINE = "random"
GROUND_TRUTH = "full"
CONFIDENCE = 0.95
DEFAULT_TARGET = 0.85
SELF_TRAINING_SUFFIX = " + self-training"  # comparison rows and plot labels
ST_ARM_SUFFIX = "+self-training"  # arm name when one strategy has runs with and without
NOTE_LIMIT = 7900  # MLflow tag values (the run description) hold at most 8000 characters


class ReportError(RuntimeError):
    """Nothing to report on: no store, no experiment, or no run matching the selection."""


# ---------------------------------------------------------------------------------------------
# Statistics


@dataclass(frozen=True)
class Estimate:
    """Mean of n values with its sample standard deviation and a t-based confidence interval."""

    mean: float
    std: float
    n: int
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def contains(self, value: float) -> bool | None:
        """Whether `value` lies in the interval; None without an interval (n < 2)."""
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return None
        return self.low <= value <= self.high

    def text(self, digits: int = 4) -> str:
        if self.n == 0:
            return "—"
        if not math.isfinite(self.half_width):
            return f"{self.mean:.{digits}f} (n={self.n}, no CI)"
        return f"{self.mean:.{digits}f} ± {self.half_width:.{digits}f} (n={self.n})"


def t_estimate(values: Iterable[float], confidence: float = CONFIDENCE) -> Estimate:
    """Mean, std (ddof=1) and the t-interval of the mean; n=1 gives NaN std and interval."""
    x = np.asarray(list(values), dtype=float)
    n = len(x)
    if n == 0:
        return Estimate(math.nan, math.nan, 0, math.nan, math.nan)
    mean = float(x.mean())
    if n == 1:
        return Estimate(mean, math.nan, 1, math.nan, math.nan)
    std = float(x.std(ddof=1))
    sem = float(stats.sem(x))
    if sem == 0.0:  # all equal: scipy refuses scale=0, the interval is the point itself
        return Estimate(mean, std, n, mean, mean)
    low, high = stats.t.interval(confidence, df=n - 1, loc=mean, scale=sem)
    return Estimate(mean, std, n, float(low), float(high))


def wilcoxon_p(differences: Sequence[float]) -> tuple[float, str]:
    """Two-sided Wilcoxon signed-rank p-value of paired differences, or NaN with a reason."""
    d = np.asarray(differences, dtype=float)
    if len(d) < 2:
        return math.nan, f"{len(d)} paired seed(s): no test"
    if np.all(np.isclose(d, 0.0, atol=1e-12)):
        return math.nan, "all differences are zero: no test"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.wilcoxon(d)
    return float(result.pvalue), ""


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment; NaN p-values stay NaN and are not counted in the family."""
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full(len(p), math.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = len(finite)
    running = 0.0
    for rank, i in enumerate(finite[np.argsort(p[finite], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def normalised_aulc(steps: Sequence[int], values: Sequence[float]) -> float:
    """Trapezoid area under accuracy-vs-labels divided by the x range: the curve's mean level."""
    if len(steps) == 0:
        return math.nan
    if len(steps) == 1:
        return float(values[0])
    return float(trapezoid(values, steps) / (steps[-1] - steps[0]))


# ---------------------------------------------------------------------------------------------
# Reading runs


@dataclass
class RunRecord:
    """One finished run: its tags, its test-accuracy curve (labelled count -> accuracy)."""

    run_id: str
    name: str
    experiment_id: str
    start_time: int
    tags: dict[str, str]
    curve: dict[int, float]
    final: float
    self_training_final: float | None
    arm: str = ""

    @property
    def strategy(self) -> str:
        return self.tags.get("strategy", "?")

    @property
    def seed(self) -> str:
        return self.tags.get("seed", f"run:{self.run_id[:8]}")

    @property
    def final_step(self) -> int:
        return max(self.curve)

    @property
    def steps(self) -> list[int]:
        return sorted(self.curve)

    def values(self) -> list[float]:
        return [self.curve[s] for s in self.steps]


@dataclass
class Selection:
    """What was asked for and what it resolved to."""

    uri: str
    experiment: str | None
    sweep: str | None  # resolved: `latest` becomes the newest sweep tag
    experiment_ids: list[str]
    experiment_names: dict[str, str]


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _describe(experiment: str | None, sweep: str | None, uri: str) -> str:
    parts = [f"experiment {experiment!r}" if experiment else "any experiment"]
    if sweep:
        parts.append(f"sweep {sweep!r}")
    return f"{', '.join(parts)} in the MLflow store {uri}"


def _search_all(client, experiment_ids: list[str], filter_string: str) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs(experiment_ids, filter_string, max_results=1000,
                                  page_token=token, order_by=["attributes.start_time DESC"])
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _same_sweep(tag: str, wanted: str) -> bool:
    if tag == wanted:
        return True
    try:
        return Path(tag).expanduser().resolve() == Path(wanted).expanduser().resolve()
    except (OSError, RuntimeError):
        return False


def is_summary(run) -> bool:
    return run.data.tags.get("summary") == "true"


def select_runs(uri: str, experiment: str | None, sweep: str | None) -> tuple[Selection, list]:
    """FINISHED, non-summary MLflow runs of the experiment and/or sweep; ReportError if none."""
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file():
        raise ReportError(f"no database file for {_describe(experiment, sweep, uri)}")
    client = _client(uri)
    if experiment:
        found = client.get_experiment_by_name(experiment)
        if found is None or found.lifecycle_stage == "deleted":
            raise ReportError(f"no experiment named {experiment!r} in the MLflow store {uri}")
        experiments = [found]
    else:
        experiments = client.search_experiments()
    ids = [e.experiment_id for e in experiments]
    names = {e.experiment_id: e.name for e in experiments}
    finished = "attributes.status = 'FINISHED'"
    runs = []
    if sweep and sweep != "latest" and "'" not in sweep:
        runs = _search_all(client, ids, f"{finished} and tags.sweep = '{sweep}'")
    if not runs:  # also: the same sweep dir spelled another way (absolute vs relative)
        runs = _search_all(client, ids, finished)
    runs = [r for r in runs if not is_summary(r)]
    if sweep == "latest":
        swept = [r for r in runs if r.data.tags.get("sweep")]
        if not swept:
            raise ReportError(f"no run with a sweep tag: {_describe(experiment, sweep, uri)}")
        sweep = max(swept, key=lambda r: r.info.start_time).data.tags["sweep"]
        log.info("latest sweep: %s", sweep)
    if sweep:
        runs = [r for r in runs if _same_sweep(r.data.tags.get("sweep", ""), sweep)]
    if not runs:
        raise ReportError(f"no finished run matches {_describe(experiment, sweep, uri)}")
    if sweep:  # the runs' own spelling of the sweep dir, for the summary run's tag
        sweep = Counter(r.data.tags["sweep"] for r in runs).most_common(1)[0][0]
    return Selection(uri, experiment, sweep, ids, names), runs


def load_records(client, runs: Sequence) -> tuple[list[RunRecord], list[str]]:
    """Read each run's test-accuracy history; keep the newest run per (arm, seed)."""
    notes: list[str] = []
    records: list[RunRecord] = []
    for run in runs:
        tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
        history = client.get_metric_history(run.info.run_id, CURVE_METRIC)
        curve: dict[int, tuple[int, float]] = {}
        for m in history:  # the last value logged at a step wins
            if m.step not in curve or m.timestamp >= curve[m.step][0]:
                curve[m.step] = (m.timestamp, m.value)
        if "strategy" not in tags or not curve:
            notes.append(f"run {run.info.run_name} ({run.info.run_id}) has no strategy tag or no "
                         f"{CURVE_METRIC} history: skipped")
            continue
        points = {int(s): float(v) for s, (_, v) in curve.items()}
        metrics = run.data.metrics
        final = metrics.get(FINAL_METRIC, points[max(points)])
        st = metrics.get(SELF_TRAINING_FINAL) if tags.get("self_training") == "true" else None
        records.append(RunRecord(run.info.run_id, run.info.run_name or run.info.run_id,
                                 run.info.experiment_id, int(run.info.start_time or 0), tags,
                                 points, float(final), None if st is None else float(st)))
    assign_arms(records)
    newest: dict[tuple[str, str], RunRecord] = {}
    for r in sorted(records, key=lambda r: r.start_time):
        key = (r.arm, r.seed)
        if key in newest:
            notes.append(f"{r.arm}: more than one run for seed {r.seed}; using the newest "
                         f"({r.run_id}), ignoring {newest[key].run_id}")
        newest[key] = r
    return sorted(newest.values(), key=lambda r: (r.arm, _seed_key(r.seed))), notes


def _seed_key(seed: str) -> tuple[int, float, str]:
    try:
        return (0, float(seed), "")
    except ValueError:
        return (1, 0.0, seed)


def assign_arms(records: Sequence[RunRecord]) -> None:
    """Name each run's arm: its strategy, plus model/data when those vary in the set, plus
    `+self-training` when one strategy has runs with and without self-training."""
    vary = [k for k in ("model", "data") if len({r.tags.get(k) for r in records}) > 1]
    st_by_strategy: dict[str, set[str]] = defaultdict(set)
    for r in records:
        st_by_strategy[r.strategy].add(r.tags.get("self_training", "false"))
    for r in records:
        name = "/".join([r.strategy, *(r.tags.get(k, "?") for k in vary)])
        if len(st_by_strategy[r.strategy]) > 1 and r.tags.get("self_training") == "true":
            name += ST_ARM_SUFFIX
        r.arm = name


# ---------------------------------------------------------------------------------------------
# Analysis


@dataclass
class Arm:
    """The runs of one strategy (one model, one data set) across seeds."""

    name: str
    runs: list[RunRecord]

    @property
    def strategy(self) -> str:
        return self.runs[0].strategy

    @property
    def ground_truth(self) -> bool:
        return self.strategy == GROUND_TRUTH

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


@dataclass
class ArmSummary:
    arm: str
    strategy: str
    ground_truth: bool
    n_runs: int
    seeds: list[str]
    final_steps: list[int]
    final: Estimate
    aulc: Estimate  # per-run normalised AULC, mean ± CI over seeds
    labels_to_target: int | None
    self_training: Estimate | None


@dataclass
class Comparison:
    """One arm against its random baseline, paired by seed, on final test accuracy."""

    arm: str
    baseline: str
    metric: str
    seeds: list[str]
    difference: Estimate
    wins: int
    ties: int
    losses: int
    p: float
    p_holm: float = math.nan
    note: str = ""


@dataclass
class ArticleRow:
    line: str  # the article's row
    ours: str  # our row, named by the labelled count we found
    article: float
    estimate: Estimate | None
    verdict: str


@dataclass
class Report:
    selection: Selection
    target: float
    arms: list[Arm]
    summaries: list[ArmSummary]
    comparisons: list[Comparison]
    differences: dict[str, dict[int, Estimate]]  # arm -> step -> paired difference from random
    article: list[ArticleRow] | None
    notes: list[str] = field(default_factory=list)
    out_dir: Path | None = None
    summary_run_id: str | None = None

    @property
    def n_runs(self) -> int:
        return sum(len(a.runs) for a in self.arms)


def group_arms(records: Sequence[RunRecord]) -> list[Arm]:
    groups: dict[str, list[RunRecord]] = defaultdict(list)
    for r in records:
        groups[r.arm].append(r)
    order = {BASELINE: 0, GROUND_TRUTH: 2}
    return [Arm(name, runs) for name, runs in
            sorted(groups.items(), key=lambda kv: (order.get(kv[1][0].strategy, 1), kv[0]))]


def labels_to_reach(steps: Sequence[int], means: Sequence[float], target: float) -> int | None:
    """The first labelled count at which the mean curve reaches `target`, else None."""
    for step, value in zip(steps, means, strict=True):
        if value >= target:
            return int(step)
    return None


def summarise(arm: Arm, target: float) -> ArmSummary:
    final = t_estimate(r.final for r in arm.runs)
    st_runs = arm.self_training_runs()
    st = t_estimate(r.self_training_final for r in st_runs) if st_runs else None
    if arm.ground_truth:
        return ArmSummary(arm.name, arm.strategy, True, len(arm.runs), arm.seeds,
                          sorted({r.final_step for r in arm.runs}), final,
                          t_estimate([]), None, st)
    steps = arm.common_steps()
    means = [float(np.mean([r.curve[s] for r in arm.runs if s in r.curve])) for s in steps]
    aulc = t_estimate(normalised_aulc(r.steps, r.values()) for r in arm.runs)
    return ArmSummary(arm.name, arm.strategy, False, len(arm.runs), arm.seeds,
                      sorted({r.final_step for r in arm.runs}), final, aulc,
                      labels_to_reach(steps, means, target), st)


def baseline_for(arm: Arm, arms: Sequence[Arm]) -> Arm | None:
    """The random arm on the same model and data (preferring one without self-training)."""
    candidates = [a for a in arms if a.strategy == BASELINE and a is not arm
                  and a.tag("model") == arm.tag("model") and a.tag("data") == arm.tag("data")]
    candidates.sort(key=lambda a: a.name.endswith(ST_ARM_SUFFIX))
    return candidates[0] if candidates else None


def pairing_notes(arms: Sequence[Arm]) -> list[str]:
    """A note per learning-curve arm missing seeds that other arms have."""
    curve_arms = [a for a in arms if not a.ground_truth]
    union = set().union(*(set(a.seeds) for a in curve_arms)) if curve_arms else set()
    notes = []
    for a in curve_arms:
        missing = sorted(union - set(a.seeds), key=_seed_key)
        if missing:
            notes.append(f"seeds do not pair: {a.name} has no run for seed(s) "
                         f"{', '.join(missing)} that other strategies have; comparisons use "
                         f"the seeds present in both")
    return notes


def compare(arm: Arm, baseline: Arm, self_training: bool = False) -> Comparison:
    ours = {s: r.self_training_final if self_training else r.final
            for s, r in arm.by_seed().items()
            if not self_training or r.self_training_final is not None}
    base = {s: r.final for s, r in baseline.by_seed().items()}
    seeds = sorted(set(ours) & set(base), key=_seed_key)
    diffs = np.array([ours[s] - base[s] for s in seeds], dtype=float)
    tie = np.isclose(diffs, 0.0, atol=1e-9)
    p, note = wilcoxon_p(diffs)
    unpaired = len(set(ours) ^ set(base))
    if unpaired:
        note = "; ".join(filter(None, [note, f"{unpaired} unpaired seed(s) left out"]))
    name = arm.name + (SELF_TRAINING_SUFFIX if self_training else "")
    metric = SELF_TRAINING_FINAL if self_training else FINAL_METRIC
    return Comparison(name, baseline.name, metric, seeds, t_estimate(diffs),
                      int(np.sum((diffs > 0) & ~tie)),
                      int(np.sum(tie)), int(np.sum((diffs < 0) & ~tie)), p, note=note)


def step_differences(arm: Arm, baseline: Arm) -> dict[int, Estimate]:
    """Per labelled count: the mean paired (by seed) difference from the baseline, with CI."""
    base = baseline.by_seed()
    out: dict[int, Estimate] = {}
    for step in arm.steps():
        diffs = [r.curve[step] - base[r.seed].curve[step] for r in arm.runs
                 if r.seed in base and step in r.curve and step in base[r.seed].curve]
        if diffs:
            out[step] = t_estimate(diffs)
    return out


ARTICLE_LINES: tuple[tuple[str, str, bool, float, str], ...] = (
    # (the article's row, strategy, use the self-training final?, its figure, our row's name)
    ("4000 samples", GROUND_TRUTH, False, 0.9225, "{n} samples (ground truth)"),
    ("400 random samples", BASELINE, False, 0.8375, "{n} random samples"),
    ("400 active learned samples", "least_confident", False, 0.8975,
     "{n} active learned samples"),
    ("+ auto-labeling", "least_confident", True, 0.9050,
     "{n} active learned samples + auto-labeling"),
)


def is_article(records: Iterable[RunRecord]) -> bool:
    return any(r.tags.get("protocol") == "article" for r in records)


def verdict(estimate: Estimate | None, figure: float) -> str:
    """Whether the article's figure lies in our 95% interval, in words."""
    if estimate is None or estimate.n == 0:
        return "no runs"
    inside = estimate.contains(figure)
    if inside is None:
        return "n=1: no interval"
    if inside:
        return "inside"
    return "outside (article above)" if figure > estimate.high else "outside (article below)"


def _counts(steps: Iterable[int]) -> str:
    found = sorted(set(steps))
    return str(found[0]) if len(found) == 1 else f"{found[0]}–{found[-1]}"


def article_table(arms: Sequence[Arm]) -> list[ArticleRow]:
    """One row per line of the article's table (and per arm of that strategy)."""
    rows = []
    for line, strategy, st, figure, template in ARTICLE_LINES:
        matching = [a for a in arms if a.strategy == strategy]
        made = False
        for arm in matching:
            runs = [r for r in arm.runs if r.tags.get("protocol") == "article"]
            if st:
                runs = [r for r in runs if r.self_training_final is not None]
            if not runs:
                continue
            values = [r.self_training_final if st else r.final for r in runs]
            estimate = t_estimate(values)  # type: ignore[arg-type]
            ours = template.format(n=_counts(r.final_step for r in runs))
            if arm.name != strategy:
                ours += f" [{arm.name}]"
            rows.append(ArticleRow(line, ours, figure, estimate, verdict(estimate, figure)))
            made = True
        if not made:
            rows.append(ArticleRow(line, "no runs", figure, None, verdict(None, figure)))
    return rows


def analyse(selection: Selection, records: list[RunRecord], target: float,
            notes: list[str]) -> Report:
    """Everything the report shows, computed from the runs."""
    arms = group_arms(records)
    notes = [*notes, *pairing_notes(arms)]
    summaries = [summarise(a, target) for a in arms]
    comparisons: list[Comparison] = []
    differences: dict[str, dict[int, Estimate]] = {}
    for arm in arms:
        if arm.strategy == BASELINE or arm.ground_truth:
            continue
        baseline = baseline_for(arm, arms)
        if baseline is None:
            notes.append(f"{arm.name}: no random runs on the same model and data to compare with")
            continue
        comparisons.append(compare(arm, baseline))
        if arm.self_training_runs():
            comparisons.append(compare(arm, baseline, self_training=True))
        differences[arm.name] = step_differences(arm, baseline)
    for c, adjusted in zip(comparisons, holm([c.p for c in comparisons]), strict=True):
        c.p_holm = adjusted
    article = article_table(arms) if is_article(records) else None
    return Report(selection, target, arms, summaries, comparisons, differences, article, notes)


# ---------------------------------------------------------------------------------------------
# Output: tables, CSVs, plots


def md_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _p(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value:.4g}"


def _interval(e: Estimate, digits: int = 4) -> str:
    if e.n == 0:
        return "—"
    if not math.isfinite(e.low):
        return f"{e.mean:+.{digits}f} (n={e.n}, no CI)"
    return f"{e.mean:+.{digits}f} [{e.low:+.{digits}f}, {e.high:+.{digits}f}]"


def compact_steps(steps: Sequence[int], max_rows: int = 10) -> list[int]:
    """A readable subset: multiples of a round stride (e.g. every 50 labels), first and last."""
    if len(steps) <= max_rows:
        return list(steps)
    stride = next((s for s in (10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000)
                   if steps[-1] / s <= max_rows), steps[-1])
    return sorted({steps[0], steps[-1], *(s for s in steps if s % stride == 0)})


def summary_table(report: Report) -> str:
    headers = ["strategy", "runs", "seeds", "labelled (final)", "final test accuracy",
               "std", "AULC (normalised)", f"labels to reach {report.target:g}",
               "after self-training"]
    rows = []
    for s in report.summaries:
        curve = not s.ground_truth
        reach = ("—" if not curve else
                 "not reached" if s.labels_to_target is None else str(s.labels_to_target))
        rows.append([
            s.arm + (" (ground truth)" if s.ground_truth else ""), s.n_runs,
            ", ".join(s.seeds), _counts(s.final_steps), s.final.text(),
            "—" if not math.isfinite(s.final.std) else f"{s.final.std:.4f}",
            s.aulc.text() if curve else "—", reach,
            s.self_training.text() if s.self_training else "—",
        ])
    return md_table(headers, rows)


def curve_table(report: Report) -> str:
    arms = [a for a in report.arms if not a.ground_truth]
    if not arms:
        return "_No learning-curve runs._"
    estimates = {a.name: a.step_estimates() for a in arms}
    steps = compact_steps(sorted(set().union(*(set(e) for e in estimates.values()))))
    rows = [[step, *(estimates[a.name][step].text() if step in estimates[a.name] else "—"
                     for a in arms)] for step in steps]
    return md_table(["labelled", *(a.name for a in arms)], rows)


def comparison_table(report: Report) -> str:
    if not report.comparisons:
        return "_No comparison: no strategy other than random with random runs beside it._"
    rows = [[c.arm, c.baseline, len(c.seeds), _interval(c.difference),
             f"{c.wins}/{c.ties}/{c.losses}", _p(c.p), _p(c.p_holm), c.note or ""]
            for c in report.comparisons]
    return md_table(["strategy", "vs", "paired seeds", "mean difference [95% CI]",
                     "wins/ties/losses", "Wilcoxon p", "Holm p", "note"], rows)


def article_markdown(rows: Sequence[ArticleRow]) -> str:
    body = [[r.line, f"{r.article:.4f}", r.ours,
             r.estimate.text() if r.estimate else "—", r.verdict] for r in rows]
    return md_table(["article", "article's figure", "ours", "ours: mean ± 95% CI (n)",
                     "article's figure in our CI?"], body)


def render_markdown(report: Report) -> str:
    sel = report.selection
    title = sel.sweep or sel.experiment or "all experiments"
    experiments = ", ".join(sorted({sel.experiment_names.get(r.experiment_id, r.experiment_id)
                                    for a in report.arms for r in a.runs}))
    parts = [
        f"# Report: {title}",
        "",
        f"- MLflow store: `{sel.uri}`",
        f"- experiment: {experiments}",
        f"- sweep: `{sel.sweep}`" if sel.sweep else "- sweep: (all runs of the experiment)",
        f"- runs: {report.n_runs} finished "
        f"({', '.join(f'{a.name}: {len(a.runs)}' for a in report.arms)})",
        f"- intervals: {CONFIDENCE:.0%} t-intervals over seeds (mean ± half-width); "
        "one test image of 400 is 0.0025",
        "",
    ]
    if report.notes:
        parts += ["## Warnings", "", *(f"- {n}" for n in report.notes), ""]
    parts += ["## Strategies", "", summary_table(report), "",
              "AULC: the area under test accuracy against labelled count divided by the range "
              "of labelled counts (the curve's mean level), per run, then averaged over seeds.",
              "", "## Test accuracy by labelled count", "", curve_table(report), "",
              "## Paired comparison with random (final test accuracy)", "",
              comparison_table(report), "",
              "Differences are strategy minus random on the same seed (same split and initial "
              "set); Wilcoxon signed-rank, two-sided; Holm-adjusted across the rows.", ""]
    if report.article is not None:
        parts += ["## The article's table", "", article_markdown(report.article), ""]
    return "\n".join(parts)


def write_csvs(report: Report, out: Path) -> None:
    with (out / "learning_curves.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["strategy", "n_labelled", "mean", "std", "n", "ci_low", "ci_high"])
        for arm in report.arms:
            for step, e in arm.step_estimates().items():
                w.writerow([arm.name, step, e.mean, e.std, e.n, e.low, e.high])
    with (out / "comparison.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["strategy", "baseline", "metric", "n_pairs", "seeds", "mean_difference",
                    "ci_low", "ci_high", "wins", "ties", "losses", "wilcoxon_p", "holm_p",
                    "note"])
        for c in report.comparisons:
            d = c.difference
            w.writerow([c.arm, c.baseline, c.metric, len(c.seeds), " ".join(c.seeds), d.mean,
                        d.low, d.high, c.wins, c.ties, c.losses, c.p, c.p_holm, c.note])
    with (out / "difference_from_random.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["strategy", "n_labelled", "mean_difference", "std", "n", "ci_low",
                    "ci_high"])
        for name, by_step in report.differences.items():
            for step, e in by_step.items():
                w.writerow([name, step, e.mean, e.std, e.n, e.low, e.high])
    if report.article is not None:
        with (out / "article_table.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["article", "article_figure", "ours", "mean", "n", "ci_low", "ci_high",
                        "verdict"])
            for r in report.article:
                e = r.estimate or t_estimate([])
                w.writerow([r.line, r.article, r.ours, e.mean, e.n, e.low, e.high, r.verdict])


ARTICLE_POINTS = (  # (label, labelled count or None for the right edge, accuracy, marker)
    ("article: 4000 labels (ground truth)", None, 0.9225, "D"),
    ("article: 400 random", 400, 0.8375, "X"),
    ("article: 400 least-confident", 400, 0.8975, "^"),
    ("article: + auto-labelling", 400, 0.9050, "*"),
)


def _band(ax, steps, estimates, color, bounds: tuple[float, float]) -> None:
    """The CI as a shaded band, clipped to what the quantity can be (accuracy: [0, 1])."""
    low = np.clip([e.low for e in estimates], *bounds)
    high = np.clip([e.high for e in estimates], *bounds)
    ok = np.isfinite(low) & np.isfinite(high)
    if ok.any():
        ax.fill_between(np.asarray(steps)[ok], low[ok], high[ok], color=color, alpha=0.2,
                        linewidth=0)


def plot_learning_curves(report: Report, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    colors = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4)
    x_max = 0
    for arm in report.arms:
        color = next(colors)
        est = arm.step_estimates()
        if arm.ground_truth:
            final = t_estimate(r.final for r in arm.runs)
            ax.axhline(final.mean, color=color, linestyle="--", linewidth=1.2,
                       label=f"{arm.name} ({_counts(r.final_step for r in arm.runs)} labels, "
                             f"n={final.n}): {final.mean:.4f}")
            if math.isfinite(final.low):
                ax.axhspan(max(final.low, 0.0), min(final.high, 1.0), color=color, alpha=0.1)
            continue
        steps = sorted(est)
        x_max = max(x_max, steps[-1])
        means = [est[s].mean for s in steps]
        n = max(e.n for e in est.values())
        ax.plot(steps, means, color=color, marker="." if len(steps) < 60 else None,
                label=f"{arm.name} (n={n})")
        _band(ax, steps, [est[s] for s in steps], color, (0.0, 1.0))
        st_runs = arm.self_training_runs()
        if st_runs:
            st = t_estimate(r.self_training_final for r in st_runs)
            yerr = None if not math.isfinite(st.half_width) else st.half_width
            ax.errorbar([steps[-1]], [st.mean], yerr=yerr, color=color, marker="o",
                        markerfacecolor="white", capsize=4, linestyle="none",
                        label=f"{arm.name}{SELF_TRAINING_SUFFIX}: {st.mean:.4f}")
    if report.article is not None:
        right = max(x_max, 400) * 1.05  # the 4000-label point, beside the 400-label ones
        for label, x, y, marker in ARTICLE_POINTS:
            ax.scatter([right if x is None else x], [y], marker=marker, color="black", s=50,
                       zorder=5, label=f"{label} {y:.4f}")
        ax.annotate("4000", (right, 0.9225), textcoords="offset points", xytext=(0, 7),
                    ha="center", fontsize=7)
    ax.set_xlabel("labelled pool items")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"Test accuracy: mean over seeds with {CONFIDENCE:.0%} CI", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_differences(report: Report, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    colors = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"][1:] * 4)
    ax.axhline(0.0, color="black", linewidth=1)
    for name, by_step in report.differences.items():
        color = next(colors)
        steps = sorted(by_step)
        ax.plot(steps, [by_step[s].mean for s in steps], color=color,
                label=f"{name} − random (n={max(e.n for e in by_step.values())})")
        _band(ax, steps, [by_step[s] for s in steps], color, (-1.0, 1.0))
    if not report.differences:
        ax.text(0.5, 0.5, "no strategy with paired random runs", ha="center",
                transform=ax.transAxes)
    else:
        ax.legend(loc="best", fontsize=8)
    ax.set_xlabel("labelled pool items")
    ax.set_ylabel("test accuracy difference from random")
    ax.set_title(f"Paired difference from random (same seed), {CONFIDENCE:.0%} CI", fontsize=11)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_outputs(report: Report, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(render_markdown(report))
    write_csvs(report, out)
    plot_learning_curves(report, out / "learning_curves.png")
    plot_differences(report, out / "difference_from_random.png")
    return sorted(p for p in out.iterdir() if p.is_file())


# ---------------------------------------------------------------------------------------------
# The summary MLflow run


def _metric_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", text)


def summary_key(selection: Selection) -> str:
    return f"sweep:{selection.sweep}" if selection.sweep else f"experiment:{selection.experiment}"


def log_summary_run(report: Report, files: Sequence[Path]) -> str:
    """A `summary-...` run beside the runs it summarises; older ones get `superseded_by`."""
    from mlflow.entities import Metric

    sel = report.selection
    counts: dict[str, int] = defaultdict(int)
    for a in report.arms:
        for r in a.runs:
            counts[r.experiment_id] += 1
    experiment_id = max(counts, key=counts.get)  # type: ignore[arg-type]
    name = f"summary-{sel.sweep or sel.experiment or sel.experiment_names[experiment_id]}"
    tags = {"summary": "true", "summary_of": summary_key(sel), "summarised_runs": report.n_runs,
            "mlflow.note.content": render_markdown(report)[:NOTE_LIMIT]}
    if sel.sweep:
        tags["sweep"] = sel.sweep
    with mlflow_run(sel.uri, experiment_id, name, tags) as recorder:
        recorder.log_params({"target": report.target, "confidence": CONFIDENCE,
                             "experiment": sel.experiment or "", "sweep": sel.sweep or "",
                             "runs": report.n_runs})
        for s in report.summaries:
            prefix = _metric_name(s.arm)
            recorder.log_metrics({f"{prefix}/final_test_accuracy_mean": s.final.mean,
                                  f"{prefix}/final_test_accuracy_ci_low": s.final.low,
                                  f"{prefix}/final_test_accuracy_ci_high": s.final.high,
                                  f"{prefix}/aulc_mean": s.aulc.mean,
                                  f"{prefix}/runs": s.n_runs})
        now = int(time.time() * 1000)
        batch = [Metric(f"mean_test_accuracy/{_metric_name(a.name)}", e.mean, now, step)
                 for a in report.arms for step, e in a.step_estimates().items()]
        for start in range(0, len(batch), 900):
            recorder.client.log_batch(recorder.run_id, metrics=batch[start:start + 900])
        for path in files:
            recorder.log_file(path, "report")
        run_id = recorder.run_id
    client = recorder.client
    for old in _search_all(client, [experiment_id], "tags.summary = 'true'"):
        if old.info.run_id != run_id and old.data.tags.get("summary_of") == summary_key(sel) \
                and "superseded_by" not in old.data.tags:
            client.set_tag(old.info.run_id, "superseded_by", run_id)
    return run_id


# ---------------------------------------------------------------------------------------------
# Entry points


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.") or "report"


def default_out_dir(selection: Selection) -> Path:
    if selection.sweep:
        return Path("reports") / slug("_".join(Path(selection.sweep).parts[-2:]))
    return Path("reports") / slug(selection.experiment or "all")


def generate_report(uri: str, experiment: str | None = None, sweep: str | None = None,
                    out_dir: Path | None = None, target: float = DEFAULT_TARGET,
                    log_run: bool = True) -> Report:
    """Select, analyse, write the out folder and (unless `log_run` is false) the summary run."""
    selection, runs = select_runs(uri, experiment, sweep)
    records, notes = load_records(_client(uri), runs)
    if not records:
        raise ReportError(f"no usable run ({len(runs)} found, none with a {CURVE_METRIC} "
                          f"history) for {_describe(experiment, selection.sweep, uri)}")
    report = analyse(selection, records, target, notes)
    for arm in report.arms:
        log.info("found %d run(s) for %s (seeds %s)", len(arm.runs), arm.name,
                 ", ".join(arm.seeds))
    for note in report.notes:
        log.warning(note)
    report.out_dir = out_dir or default_out_dir(selection)
    files = write_outputs(report, report.out_dir)
    if log_run:
        report.summary_run_id = log_summary_run(report, files)
    return report


def console_summary(report: Report) -> str:
    lines = ["Runs found per strategy:"]
    lines += [f"  {a.name}: {len(a.runs)} (seeds {', '.join(a.seeds)})" for a in report.arms]
    lines += [f"Report: {report.out_dir}/summary.md"]
    if report.summary_run_id:
        lines.append(f"Summary run: {report.summary_run_id} (tag summary=true)")
    lines += ["", summary_table(report), "", comparison_table(report)]
    if report.article is not None:
        lines += ["", "The article's table:", "", article_markdown(report.article)]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="al-research report",
        description="Seed-averaged comparison of the strategies of an experiment or sweep.")
    parser.add_argument("--experiment", help="MLflow experiment name")
    parser.add_argument("--sweep", help="the runs' `sweep` tag (the Hydra sweep dir), or "
                                        "`latest` for the newest sweep")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
                             "sqlite:///<project root>/mlflow.db)")
    parser.add_argument("--target", type=float, default=DEFAULT_TARGET,
                        help="accuracy target for 'labels to reach' (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: reports/<sweep or experiment>/)")
    parser.add_argument("--no-log", action="store_true",
                        help="do not create the summary MLflow run")
    args = parser.parse_args(argv)
    if not args.experiment and not args.sweep:
        parser.error("give --experiment NAME and/or --sweep SWEEP (or --sweep latest)")
    if not 0.0 < args.target <= 1.0:
        parser.error(f"--target must be in (0, 1], got {args.target}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """`al-research report ...`: 0 on success, 1 when nothing matches."""
    args = parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    uri = resolve_tracking_uri(args.tracking_uri)
    try:
        report = generate_report(uri, args.experiment, args.sweep, args.out, args.target,
                                 log_run=not args.no_log)
    except ReportError as error:
        print(f"al-research report: {error}", file=sys.stderr)
        return 1
    print(console_summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
