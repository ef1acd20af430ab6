"""The MLflow tag and metric names the experiment writes and the report reads, defined once.

    from al_research.tracking.names import Metric, Tag, flag

    tags = {Tag.STRATEGY: conf.strategy.name, Tag.GROUND_TRUTH: flag(conf.strategy.name == ...)}
    recorder.log_metrics({Metric.TEST_ACCURACY: acc}, step=n_labelled)

Boolean tags hold the strings `"true"` / `"false"` (`flag`); `is_true` reads them back.
"""

from __future__ import annotations

import hashlib
from typing import Final

TRUE: Final = "true"
FALSE: Final = "false"


def flag(value: bool) -> str:
    """A boolean as a tag value: "true" or "false"."""
    return TRUE if value else FALSE


def is_true(value: object) -> bool:
    """Whether a tag (or param) value says true: "true", "True" (a str(bool) param) or True."""
    return str(value).strip().lower() == TRUE


class Tag:
    """Run tags. Experiment runs carry the first group; summary runs the second."""

    STRATEGY: Final = "strategy"  # the query strategy's name
    MODEL: Final = "model"  # model.name
    DATA: Final = "data"  # data.name
    SEED: Final = "seed"  # the master seed: split, initial set, random selection
    INITIAL: Final = "initial"  # how the initial set was chosen: random | first | kmeans
    SELF_TRAINING: Final = "self_training"  # flag: self-training ran after the budget
    TEST_SELECTED: Final = "test_selected"  # flag: early stopping (model selection) on TEST
    GROUND_TRUTH: Final = "ground_truth"  # flag: the run labelled the whole pool at once
    DEVICE: Final = "device"  # cpu | gpu
    SWEEP: Final = "sweep"  # the Hydra sweep dir (multirun only)
    JOB_NUM: Final = "job_num"  # the Hydra job number within the sweep (multirun only)
    PROTOCOL: Final = "protocol"  # extra tag from tracking.tags, e.g. "article"
    CONFIG_HASH: Final = "config_hash"  # a hash of what the run computes (sweeps.resume)
    REUSED_PREFIX: Final = "reused_in/"  # + a digest of a sweep dir: `reused_tag(sweep)`
    STOPPING_PREFIX: Final = "stopping."  # + a criterion: labels when it fired, or NEVER
    STOPPED_BY: Final = "stopped_by"  # the criteria that ended the loop (stopping.action=stop)

    # summary runs (written by the report)
    SUMMARY: Final = "summary"  # flag: a report's summary run, never an input to a report
    SUMMARY_OF: Final = "summary_of"  # "sweep:<dir>" or "experiment:<name>"
    SUMMARISED_RUNS: Final = "summarised_runs"
    REPORT_SETTING_PREFIX: Final = "report."  # + a setting, where a report's params exist
    NOTE: Final = "mlflow.note.content"  # the run's description in the MLflow UI
    LOGGED_IMAGES: Final = "mlflow.loggedImages"  # "True": the UI looks for step images


def reused_tag(sweep: str) -> str:
    """The tag a finished run gets when a sweep reuses it instead of running its configuration
    again; its value is the sweep dir."""
    return Tag.REUSED_PREFIX + hashlib.sha1(str(sweep).encode()).hexdigest()[:12]


def reused_job_tag(sweep: str) -> str:
    """The tag holding the job number the reused run stands for in that sweep."""
    return f"{reused_tag(sweep)}/{Tag.JOB_NUM}"


NEVER: Final = "never"  # a stopping criterion's tag when it did not fire


def stopping_tag(criterion: str) -> str:
    """The tag holding the labelled count at which a stopping criterion first fired."""
    return Tag.STOPPING_PREFIX + criterion


def stopping_metric(criterion: str) -> str:
    """A stopping criterion's value per round (step: labelled count)."""
    return Metric.STOPPING_PREFIX + criterion


def stopping_fired_metric(criterion: str) -> str:
    """The labelled count at which a stopping criterion first fired (logged once)."""
    return f"{Metric.STOPPING_PREFIX}{criterion}/fired_at"


class Metric:
    """Run metrics. Per-round metrics use the labelled count as the step."""

    # per active-learning round (step: labelled count)
    TEST_ACCURACY: Final = "test_accuracy"
    VAL_ACCURACY: Final = "val_accuracy"
    EPOCHS: Final = "epochs"
    FIT_SECONDS: Final = "fit_seconds"
    MEAN_CONFIDENCE: Final = "mean_confidence"  # mean max-softmax over the unlabelled pool
    LABELS_SPENT: Final = "labels_spent"

    # once, at the end of the loop (step: the final labelled count)
    FINAL_TEST_ACCURACY: Final = "final_test_accuracy"
    FINAL_VAL_ACCURACY: Final = "final_val_accuracy"
    # a model trained from scratch on exactly the run's final labelled set (label-fair score)
    FRESH_TEST_ACCURACY: Final = "fresh_test_accuracy"
    # the number of labelled validation items the run had (whether or not it stopped on them)
    VAL_LABELS: Final = "val_labels"
    WALL_SECONDS: Final = "wall_seconds"

    # self-training (step: pseudo-labels in the training set)
    ST_TEST_ACCURACY: Final = "self_training/test_accuracy"
    ST_VAL_ACCURACY: Final = "self_training/val_accuracy"
    ST_PSEUDO_LABEL_ACCURACY: Final = "self_training/pseudo_label_accuracy"
    ST_BATCH_PSEUDO_LABEL_ACCURACY: Final = "self_training/batch_pseudo_label_accuracy"
    ST_MIN_BATCH_CONFIDENCE: Final = "self_training/min_batch_confidence"
    ST_EPOCHS: Final = "self_training/epochs"
    ST_FINAL_TEST_ACCURACY: Final = "self_training/final_test_accuracy"
    ST_FINAL_PSEUDO_LABEL_ACCURACY: Final = "self_training/final_pseudo_label_accuracy"
    ST_N_PSEUDO: Final = "self_training/n_pseudo"
    ST_ROUNDS: Final = "self_training/rounds"

    # k-means on the pool and the cluster-then-label baseline
    KMEANS_PURITY: Final = "kmeans/purity"
    KMEANS_DISTINCT_DIGITS: Final = "kmeans/distinct_digits"
    KMEANS_CTL_LABELS: Final = "kmeans/cluster_then_label_labels"
    KMEANS_CTL_TEST_ACCURACY: Final = "kmeans/cluster_then_label_test_accuracy"
    KMEANS_CTL_PSEUDO_ACCURACY: Final = "kmeans/cluster_then_label_pseudo_accuracy"

    # stopping criteria: `stopping_metric(name)` per round, `stopping_fired_metric(name)` once
    STOPPING_PREFIX: Final = "stopping/"


class SummaryMetric:
    """Metrics of a report's summary run; `{arm}` is an arm's label made a metric name."""

    TEST_SELECTED_RUNS: Final = "test_selected_runs"
    FINAL_MEAN: Final = "{arm}/final_test_accuracy_mean"
    FINAL_CI_LOW: Final = "{arm}/final_test_accuracy_ci_low"
    FINAL_CI_HIGH: Final = "{arm}/final_test_accuracy_ci_high"
    AULC_MEAN: Final = "{arm}/aulc_mean"
    RUNS: Final = "{arm}/runs"
    MEAN_TEST_ACCURACY: Final = "mean_test_accuracy/{arm}"  # step: labelled count


class Param:
    """MLflow params the report reads: the flattened resolved config (`config.flatten`)."""

    SEED: Final = "seed"
    STRATEGY: Final = "strategy.name"
    BUDGET: Final = "budget"
    VAL_SIZE: Final = "data.val_size"
    TEST_SIZE: Final = "data.test_size"  # items in the test set: one is 1/TEST_SIZE of accuracy
    MONITOR: Final = "model.early_stopping.monitor"
    EARLY_STOPPING: Final = "model.early_stopping.enabled"
