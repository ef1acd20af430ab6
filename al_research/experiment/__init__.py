"""One experiment: the parts a config builds, and the stages that run on them.

`runner.run(cfg)` is the whole of one job: it builds the split, the model, the strategy and the
oracle from the config, opens the MLflow run, and runs the stages in order (k-means, the
active-learning loop, label-fair refits, self-training). The loop (`loop`) owns every piece of
state of the rounds; the oracle (`oracle`) is the only holder of the pool's true labels.
Nothing here knows how jobs are launched (`al_research.sweeps`) or how runs are compared
(`al_research.report`).
"""
