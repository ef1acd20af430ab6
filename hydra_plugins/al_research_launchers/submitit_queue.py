"""`hydra/launcher=local` and `=slurm`: submitit, waiting for every job even if one dies.

Hydra instantiates launchers only from the `hydra_plugins` package; the behaviour lives in
`al_research.sweeps.launchers.WaitForAllSubmititJobs`.
"""

from hydra_plugins.hydra_submitit_launcher import submitit_launcher

from al_research.sweeps.launchers import WaitForAllSubmititJobs


class LocalLauncher(WaitForAllSubmititJobs, submitit_launcher.LocalLauncher):
    """submitit's local executor; a dead job does not stop the others."""


class SlurmLauncher(WaitForAllSubmititJobs, submitit_launcher.SlurmLauncher):
    """SLURM through submitit; a dead job does not stop the others."""
