"""Training: `fit` (loop.py) drives a Distiller; metrics, checkpoints, seeding, run directories."""
