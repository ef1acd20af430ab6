"""The `al-research` console script: Hydra overrides run an experiment."""

from __future__ import annotations


def main() -> None:
    from al_research.app import main as hydra_main

    hydra_main()
