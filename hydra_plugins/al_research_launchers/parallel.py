"""`hydra/launcher=parallel`: joblib, surviving dead workers and stopping cleanly on a signal,
its workers forked with the imports done.

Hydra instantiates launchers only from the `hydra_plugins` package; the implementation lives in
`al_research.sweeps.launchers`. Hydra imports this module when it scans its plugins: the launcher's
schema (`parallel_schema`, joblib's keys plus `start_method`) is registered here.
"""

from hydra.core.config_store import ConfigStore

from al_research.sweeps.launchers import ParallelLauncherConf
from al_research.sweeps.launchers import ResilientJoblibLauncher as _Implementation

ConfigStore.instance().store(group="hydra/launcher", name="parallel_schema",
                             node=ParallelLauncherConf, provider="al_research")


class ResilientJoblibLauncher(_Implementation):
    """See `al_research.sweeps.launchers.ResilientJoblibLauncher`."""
