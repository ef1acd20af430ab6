"""`hydra/launcher=parallel`: joblib, surviving dead workers and stopping cleanly on a signal.

Hydra instantiates launchers only from the `hydra_plugins` package; the implementation lives in
`al_research.launchers`.
"""

from al_research.launchers import ResilientJoblibLauncher as _Implementation


class ResilientJoblibLauncher(_Implementation):
    """See `al_research.launchers.ResilientJoblibLauncher`."""
