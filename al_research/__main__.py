"""`python -m al_research [overrides]`: run one experiment, or a sweep with -m."""

from al_research.cli import main

if __name__ == "__main__":
    main()
