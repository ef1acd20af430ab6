"""al-research's Hydra launcher plugin (Hydra loads launchers only from `hydra_plugins`)."""
