"""Stopping criteria: when would an active learner have stopped buying labels?

`stopping` in the config (conf/stopping/) lists criteria by name; each is one class named by
`_target_` (a `base.Criterion`: `Params`, `needs`, `observe(obs) -> Reading`) and one yaml
(`# @package stopping.criteria.<name>`). The loop calls `monitor.StoppingMonitor` after every
round's fit and selection: it logs each criterion's value (`stopping/<name>`, step: the labelled
count), the round each first fires (`stopping/<name>/fired_at`, tag `stopping.<name>`, "never"
if it did not) and, with `stopping.action=stop`, ends the loop there.

- `agreement.StabilizingPredictions` (`kappa`): Cohen's kappa between successive rounds'
  predictions on a stop set (Bloodgood & Vijay-Shanker 2009);
- `agreement.ClassificationChange` (`classification_change`): no prediction on the unlabelled
  pool changes (Zhu et al. 2008);
- `uncertainty.OverallUncertainty` (`overall_uncertainty`): the pool's mean normalised entropy
  below a threshold (Zhu et al. 2008);
- `uncertainty.MaxConfidence` (`max_confidence`): every selected item's normalised entropy below
  a threshold (Zhu et al. 2008);
- `validation.ValidationPlateau` (`val_plateau`): validation accuracy stops improving.

Modules here import no TensorFlow at import time: the config is checked before it loads.
"""

from al_research.stopping.base import Criterion, Observation, Reading

__all__ = ["Criterion", "Observation", "Reading"]
