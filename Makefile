# al-research: `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install run run-one test test-fast lint bench ui clean cluster-up cluster-down \
	test-cluster

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-13s %s\n", $$1, $$2}'

install: $(STAMP) ## Create .venv and install the project with its test tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

run: install ## The article's experiment, honestly: 20 seeds in parallel, then its table
	$(BIN)/python -m al_research experiment=article_seeds

run-one: install ## One least-confident experiment (seed 0), a line per round
	$(BIN)/python -m al_research

test: install ## Run the whole test suite (real TensorFlow, MLflow and Hydra), cluster tests aside
	$(BIN)/python -m pytest -q -m "not cluster"

test-fast: install ## The suite without the slow end-to-end runs
	$(BIN)/python -m pytest -q -m "not slow and not cluster"

CLUSTER_DIR ?= $(CURDIR)/.cluster
CLUSTER := CLUSTER_DIR=$(CLUSTER_DIR) VENV=$(VENV) scripts/cluster.sh

cluster-up: install ## A one-node SLURM and a PostgreSQL-backed mlflow server, in .cluster/ (~1 min the first time)
	$(CLUSTER) up

cluster-down: ## Stop what cluster-up started: nothing left running from .cluster/
	$(CLUSTER) down

test-cluster: cluster-up ## The cluster tests: sweeps through SLURM into PostgreSQL (tests/cluster)
	source $(CLUSTER_DIR)/env.sh && $(BIN)/python -m pytest -q -m cluster

lint: install ## ruff
	$(BIN)/ruff check al_research tests benchmarks

bench: install ## Every benchmark: peers, models, strategies, artifacts, parallel sweeps (~1 h)
	$(BIN)/python benchmarks/compare_peers.py
	$(BIN)/python benchmarks/models.py
	$(BIN)/python benchmarks/strategies.py
	$(BIN)/python benchmarks/artifacts.py
	$(BIN)/python benchmarks/parallel_sweep.py

ui: install ## Browse the local MLflow store
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db

clean: ## Remove outputs (keeps .venv and mlflow.db)
	rm -rf outputs .pytest_cache .ruff_cache
