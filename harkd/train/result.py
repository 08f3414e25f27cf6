"""`RunResult`: what a finished run measured, as `fit` returns it and metrics.json stores it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunResult:
    """What a finished run measured; `metrics[split]` as `classification_metrics` returns, and
    `metrics["method"]` what the Distiller's `prepare` reported (when it reported anything)."""

    metrics: dict[str, dict[str, Any]]
    best_epoch: int | None
    epochs_run: int
    timings: dict[str, float]
    n_params: int
    run_dir: Path
    config_hash: str
    seed: int
    history: list[dict[str, Any]] = field(default_factory=list)
    from_cache: bool = False
    name: str = "run"
    inputs_hash: str = ""

    def summary(self) -> str:
        """One line: test and validation scores, selection epoch, size, time, directory."""
        t, v = self.metrics["test"], self.metrics["val"]
        best = "-" if self.best_epoch is None else str(self.best_epoch + 1)
        return (
            f"{self.name}: test macro-F1 {t['macro_f1']:.4f} acc {t['accuracy']:.4f} "
            f"ECE {t['ece']:.3f} | val macro-F1 {v['macro_f1']:.4f} | best epoch {best}/"
            f"{self.epochs_run} | {self.n_params:,} params | "
            f"{self.timings.get('train_s', 0.0):.1f} s ({self.timings.get('s_per_epoch', 0.0):.2f}"
            f" s/epoch) | seed {self.seed} | {self.run_dir}"
            + (" (reused)" if self.from_cache else "")
        )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["run_dir"] = str(self.run_dir)
        d.pop("from_cache")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], run_dir: Path) -> RunResult:
        names = {f.name for f in dataclasses.fields(cls)} - {"run_dir", "from_cache"}
        return cls(**{k: d[k] for k in names if k in d}, run_dir=run_dir, from_cache=True)
