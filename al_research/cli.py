"""The `al-research` console script: `report ARGS` writes a report, anything else runs Hydra."""

from __future__ import annotations

import sys


def main() -> None:
    from al_research.env import use_private_tempdir

    use_private_tempdir()  # no autograph files left in the system temp folder, even if killed
    if len(sys.argv) > 1 and sys.argv[1] == "report":
        from al_research.report import main as report_main

        sys.exit(report_main(sys.argv[2:]))

    from al_research.app import main as hydra_main

    hydra_main()
