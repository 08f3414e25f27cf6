"""Training: `fit` (loop.py) fits a run that assemble.py builds from a config and its data;
the run card (runcard.py) and its compatibility check (compat.py); metrics, checkpoints, seeding,
run directories."""
