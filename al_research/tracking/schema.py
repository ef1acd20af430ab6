"""A new SQLite store's empty schema: MLflow's migrations, or a copy of their result.

MLflow's migrations of an empty store take ~2 s and give the same database every time for one
MLflow version, so the first one made on a machine is kept in the user's cache folder and later
stores are copies of it, each with its own Default experiment (`schema_template`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from pathlib import Path

log = logging.getLogger(__name__)


def create_sqlite_schema(path: Path) -> None:
    """Create MLflow's schema in a file of its own, then move it into place atomically: no
    other process (ours, or an `mlflow ui`) ever sees a half-made store and races to finish it,
    which can leave a store broken for good ("table ... already exists"). The schema is a copy
    of the kept one when there is one (the module's docstring), MLflow's migrations else."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    fresh = path.with_name(f".{path.name}.creating-{os.getpid()}")
    fresh.unlink(missing_ok=True)
    artifacts = str(path.parent / "mlartifacts")
    template = schema_template()
    try:
        if not (template is not None and template.is_file() and _copy_template(
                template, fresh, artifacts)):
            fresh.unlink(missing_ok=True)
            fresh_uri = f"sqlite:///{fresh}"
            SqlAlchemyStore(fresh_uri, artifacts)  # runs the migrations
            engine = SqlAlchemyStore._engine_map.pop(fresh_uri, None)
            if engine is not None:
                engine.dispose()
            if template is not None:
                _keep_template(fresh, template)
        os.replace(fresh, path)
    finally:
        fresh.unlink(missing_ok=True)


def schema_template() -> Path | None:
    """Where this MLflow version's empty store is kept for the next new store: the user's
    cache folder (`$XDG_CACHE_HOME` or ~/.cache), `al-research/`; None when
    `AL_RESEARCH_SCHEMA_CACHE=0` or when there is no home folder to find."""
    import mlflow

    if os.environ.get("AL_RESEARCH_SCHEMA_CACHE", "1") == "0":
        return None
    try:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except (RuntimeError, KeyError):  # no $HOME and no user entry: migrate every time
        return None
    return root / "al-research" / f"mlflow-{mlflow.__version__}-empty.db"


def _keep_template(fresh: Path, template: Path) -> None:
    import shutil

    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        part = template.with_name(f".{template.name}.{os.getpid()}")
        shutil.copyfile(fresh, part)
        os.replace(part, template)  # whole or absent, whoever else writes it
    except OSError as error:  # a read-only home: every new store runs the migrations
        log.debug("could not keep MLflow's empty schema in %s: %s", template, error)


def _copy_template(template: Path, fresh: Path, artifacts: str) -> bool:
    """`fresh` made a copy of the kept empty store, its Default experiment given `artifacts`
    (as MLflow's own store would give it) and the time now; False if that failed."""
    import shutil

    from mlflow.utils.uri import append_to_uri_path, resolve_uri_if_local

    try:
        shutil.copyfile(template, fresh)
        now = int(time.time() * 1000)
        with contextlib.closing(sqlite3.connect(fresh)) as db, db:
            db.execute("UPDATE experiments SET artifact_location = ?, creation_time = ?, "
                       "last_update_time = ? WHERE experiment_id = 0",
                       (append_to_uri_path(resolve_uri_if_local(artifacts), "0"), now, now))
        return True
    except (OSError, sqlite3.Error) as error:
        log.debug("could not copy MLflow's empty schema from %s: %s", template, error)
        return False
