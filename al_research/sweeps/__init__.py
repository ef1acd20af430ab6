"""Running jobs and sweeps: everything between the command line and one experiment.

Hydra's callbacks (`callbacks`, `report_callback`, `progress`), the launchers that survive dead
workers (`launchers`, with forked `workers`), the CPU share each job gets (`cores`), stop
signals that end a run cleanly (`signals`), resuming a sweep (`resume`) and unique sweep folders
(`folders`). It decides where and when jobs run, never what a job computes.
"""
