"""Hydra callbacks: make the MLflow store exist before a sweep's jobs start."""

from __future__ import annotations

import logging
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from al_research.tracking import prepare_store, resolve_tracking_uri

log = logging.getLogger(__name__)


class PrepareMlflowStore(Callback):
    """Create the SQLite schema and the experiment once, so parallel jobs never race for them."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        uri = resolve_tracking_uri(config.tracking.uri)
        experiment_id = prepare_store(uri, config.tracking.experiment_name)
        log.info("MLflow store %s, experiment %r (id %s) ready", uri,
                 config.tracking.experiment_name, experiment_id)
