"""The report's sections, one module each, registered once in `SECTIONS` in the order
summary.md shows them (see `al_research.report.section` for what a section is).

A new section: a module here with a `Section` subclass and its instance `SECTION`, and one line
in `SECTIONS`. (A test walks this folder: a module missing from the list fails it.)
"""

from al_research.report.section import Section
from al_research.report.sections import (
    article,
    attribution,
    comparison,
    curves,
    overview,
    per_arm,
    ranking,
    stopping,
    trend,
)

SECTIONS: tuple[Section, ...] = (
    overview.SECTION,  # what was selected, intervals, the test-set size, warnings
    per_arm.SECTION,  # per arm: final accuracy, AULC, labels to reach the target
    ranking.SECTION,  # mean rank within each configuration
    curves.SECTION,  # test accuracy by labelled count
    comparison.SECTION,  # each arm against random, paired by seed
    trend.SECTION,  # along a numeric factor (batch_size): each strategy's gain over random
    stopping.SECTION,  # per arm and stopping criterion: labels it would spend, accuracy given up
    article.SECTION,  # the article's table (its experiments only)
    attribution.SECTION,  # what each factor of an ablation sweep changes
)
