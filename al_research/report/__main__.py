"""`python -m al_research.report ARGS`: the same as `al-research report ARGS`."""

import sys

from al_research.report.command import main

if __name__ == "__main__":
    sys.exit(main())
