"""Learning-rate schedules as pure functions of the step (nothing to save but the step).

- `cosine`: cosine decay from the base rate to 0 over the stage (Loshchilov & Hutter, SGDR,
  ICLR 2017, without restarts).
- `onecycle`: Smith & Topin, "Super-Convergence" (arXiv 1708.07120): linear warm-up from
  base/25 to base over the first 30% of steps, then cosine annealing to base/(25 * 1e4), as
  torch's OneCycleLR with its defaults (the learning rate only; AdamW's betas stay fixed).
- `constant`.
"""

from __future__ import annotations

import math

ONECYCLE_PCT_START = 0.3
ONECYCLE_DIV, ONECYCLE_FINAL_DIV = 25.0, 1e4


def lr_factor(schedule: str, step: int, total: int) -> float:
    """Multiplier of the base learning rate at `step` (0-based) of `total` steps."""
    t = min(step, max(total - 1, 1)) / max(total - 1, 1)
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    if schedule == "onecycle":
        start, low = 1.0 / ONECYCLE_DIV, 1.0 / (ONECYCLE_DIV * ONECYCLE_FINAL_DIV)
        if t <= ONECYCLE_PCT_START:
            return start + (1.0 - start) * t / ONECYCLE_PCT_START
        u = (t - ONECYCLE_PCT_START) / (1.0 - ONECYCLE_PCT_START)
        return low + (1.0 - low) * 0.5 * (1.0 + math.cos(math.pi * u))
    raise ValueError(f"unknown schedule {schedule!r}; known: constant, cosine, onecycle")
