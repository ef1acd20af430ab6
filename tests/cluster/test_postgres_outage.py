"""A PostgreSQL-backed `mlflow server` killed mid-sweep and restarted: the sweep fails clearly
(no waiting: each job that needs the store fails within MLflow's bounded retries), the rerun
completes only the missing runs, no config has two FINISHED runs, no run is left RUNNING
(`tests/test_store_outage.py`'s check, on a server of its own over the cluster's database)."""

from __future__ import annotations

import os

import pytest

from tests.conftest import MlflowServer
from tests.test_store_outage import check_store_lost_mid_sweep

pytestmark = pytest.mark.cluster


def test_a_postgres_backed_server_killed_mid_sweep_then_restarted(tmp_path):
    backend = os.environ.get("AL_RESEARCH_PG_URI", "")
    assert backend.startswith("postgresql"), "make cluster-up exports AL_RESEARCH_PG_URI"
    server = MlflowServer(tmp_path, backend=backend).start()
    try:
        check_store_lost_mid_sweep(tmp_path, server)
    finally:
        server.kill()
