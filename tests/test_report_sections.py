"""The report as sections: every section module is registered, and captions read their numbers
from the runs (the test-set size), end to end on a real temporary MLflow store."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import al_research  # noqa: F401  (quiet TF, one BLAS thread, before anything imports them)
from al_research import report as rp
from al_research.report import sections
from al_research.report.section import Section

EXPERIMENT = "caption-test"
SWEEP = "caption-sweep"
STEPS = (10, 20, 30)
# Accuracies on a 250-image test set (k/250), chosen so no number the report prints from them
# spells 400; per (strategy, seed) the curve at STEPS.
CURVES = {("random", "0"): (0.284, 0.512, 0.636), ("random", "1"): (0.292, 0.528, 0.656),
          ("random", "2"): (0.276, 0.532, 0.644), ("least_confident", "0"): (0.284, 0.556, 0.688),
          ("least_confident", "1"): (0.292, 0.548, 0.672),
          ("least_confident", "2"): (0.276, 0.564, 0.684)}


# -- the list -----------------------------------------------------------------------------------
def test_every_module_in_the_sections_folder_is_registered_once() -> None:
    """A section is one module in report/sections and one line in SECTIONS: a module that is
    not in the list (or a list entry from elsewhere) fails here."""
    walked = {f"{sections.__name__}.{m.name}" for m in pkgutil.iter_modules(sections.__path__)}
    registered = [type(s).__module__ for s in sections.SECTIONS]
    assert walked, "no section modules found"
    assert sorted(registered) == sorted(walked)  # each module once, nothing from elsewhere
    for name in walked:
        module = importlib.import_module(name)
        assert isinstance(module.SECTION, Section), name
        assert module.SECTION in sections.SECTIONS, name
    names = [s.name for s in sections.SECTIONS]
    assert len(set(names)) == len(names), names


def test_report_modules_stay_small() -> None:
    root = Path(rp.__file__).parent
    sizes = {str(p.relative_to(root)): len(p.read_text().splitlines())
             for p in root.rglob("*.py")}
    assert {p: n for p, n in sizes.items() if n > 400} == {}


# -- the test-set size, from the runs ----------------------------------------------------------
def _record(strategy: str, seed: str, test_size: str | None) -> rp.RunRecord:
    curve = dict(zip(STEPS, CURVES[(strategy, seed)], strict=True))
    params = {"seed": seed, "strategy.name": strategy}
    if test_size is not None:
        params["data.test_size"] = test_size
    return rp.RunRecord(f"{strategy}-{seed}", f"{strategy}-{seed}", "1", 0,
                        {"strategy": strategy, "seed": seed}, curve, curve[STEPS[-1]], None,
                        params=params)


def _report(sizes: list[str | None]) -> rp.Report:
    records = [_record(strategy, seed, size)
               for (strategy, seed), size in zip(CURVES, sizes, strict=True)]
    selection = rp.Selection("sqlite:///caption.db", EXPERIMENT, SWEEP, ["1"], {"1": EXPERIMENT})
    return rp.analyse(selection, records, 0.5, [], rp.assign_arms(records))


def test_the_caption_says_nothing_when_the_runs_differ_or_do_not_say() -> None:
    assert "one test image of 250 is 0.004" in rp.render_markdown(_report(["250"] * 6))
    for sizes in (["250"] * 5 + ["300"], ["250"] * 5 + [None], [None] * 6):
        report = _report(sizes)
        assert rp.test_size(report) is None
        text = rp.render_markdown(report)
        assert "- intervals: 95% t-intervals over seeds (mean ± half-width)\n" in text
        assert "test image" not in text


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Six finished runs (random and least-confident, three seeds) of a 250-image test set,
    written through the tracking API as the experiment writes them."""
    from al_research.tracking import mlflow_run, prepare_store

    root = tmp_path_factory.mktemp("caption-store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    experiment_id = prepare_store(uri, EXPERIMENT)
    for (strategy, seed), values in CURVES.items():
        tags = {"strategy": strategy, "seed": seed, "sweep": SWEEP, "summary": "false"}
        with mlflow_run(uri, experiment_id, f"{strategy}-s{seed}", tags, local_dir=root) as rec:
            rec.log_params({"seed": seed, "strategy.name": strategy, "data.test_size": 250,
                            "data.pool_size": 500, "budget": 30})
            for step, value in zip(STEPS, values, strict=True):
                rec.log_metrics({"test_accuracy": value}, step=step)
            rec.log_metrics({"final_test_accuracy": values[-1]}, step=STEPS[-1])
    return uri


def test_a_report_on_another_test_size_captions_it_and_never_400(
        store: str, tmp_path: Path) -> None:
    report = rp.generate_report(store, EXPERIMENT, SWEEP, tmp_path / "out", target=0.5)
    assert rp.test_size(report) == 250
    markdown = (tmp_path / "out" / "summary.md").read_text()
    caption = ("- intervals: 95% t-intervals over seeds (mean ± half-width); one test image "
               "of 250 is 0.004\n")
    assert caption in markdown
    assert [a.name for a in report.arms] == ["random", "least_confident"]
    printed = {"summary.md": markdown, "tables": rp.main_tables(report),
               "console": rp.console_summary(report).replace(str(tmp_path), "<tmp>")}
    for name, text in printed.items():  # (run ids are random hex: "400" may occur in one)
        assert "400" not in re.sub(r"\b[0-9a-f]{32}\b", "<run id>", text), name
    # the summary run's description is the same report
    from mlflow import MlflowClient

    note = MlflowClient(store).get_run(report.summary_run_id).data.tags["mlflow.note.content"]
    assert caption in note and "400" not in note.replace(store, "<store>")
