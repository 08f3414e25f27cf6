"""`takd`: the assistant ensemble of teacher-assistant KD (Mirzadeh, Farajtabar, Li, Levine,
Matsukawa & Ghasemzadeh, "Improved Knowledge Distillation via Teacher Assistant", AAAI 2020).

TAKD's multi-step chains (teacher -> assistant(s) -> student, of any length) are chains of
plain `kd` steps: each assistant is a training node of the experiment engine taught by the
node before it (configs/grids/takd_chain.yaml). This method is the step after several
assistants: the student learns from their ensemble,

    p_ens^T = sum_m w_m softmax(z_m / T),  sum_m w_m = 1, w_m >= 0,
    L = (1 - alpha) CE(z_s, y) + alpha T^2 KL(p_ens^T || p_s^T)      (batch-mean KL),

with the weights w found before training by differential evolution
(`scipy.optimize.differential_evolution`, seeded) maximising the validation macro-F1 of the
weighted ensemble at T = 1 (`weights: uniform` keeps 1/M, the control). The weights, the
ensemble's validation macro-F1 with them and with uniform weights, and the fact that the
validation split was used to fit them are stored in metrics.json under `method`: model
selection reads the same windows, so the run's validation score is optimistic.

Departures: Mirzadeh et al. distil along a single chain; combining several assistants with
fitted weights is the assistant ensemble of the seed HAR studies. The weights are searched in
[0, 1]^M and normalised (uniform where all are zero); uniform weights are in the initial
population, so the fitted ensemble never scores below the uniform one on validation. 1-D
networks on HAR windows; the assistants may see other views than the student.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from harkd.distill.base import (
    Batch,
    DistillContext,
    Distiller,
    Example,
    FrozenTeacher,
    MethodParams,
    ValidationSplit,
    ViewModel,
    register_distiller,
)
from harkd.distill.losses import kl_rows, soft_cross_entropy

VALIDATION_USE = ("ensemble weights fitted on the validation split (differential evolution on "
                  "macro-F1); model selection reads the same windows")


class TAKDParams(MethodParams):
    alpha: float = Field(0.5, ge=0, le=1, description="weight of the KL term (CE gets 1 - alpha)")
    temperature: float = Field(4.0, gt=0, description="softmax temperature T")
    weights: Literal["fit", "uniform"] = Field(
        "fit", description="fit: differential evolution on validation macro-F1; uniform: 1/M"
    )
    seed: int = Field(0, description="seed of differential evolution")
    maxiter: int = Field(50, ge=1, description="generations of differential evolution")
    popsize: int = Field(15, ge=1, description="population size per weight")


def normalised(w: np.ndarray) -> np.ndarray:
    """Non-negative weights scaled to sum 1 (uniform where they are all zero)."""
    w = np.clip(np.asarray(w, dtype=np.float64), 0, None)
    return w / w.sum() if w.sum() > 0 else np.full(len(w), 1 / len(w))


def ensemble_predictions(probs: np.ndarray, w: np.ndarray) -> np.ndarray:
    """argmax over classes of sum_m w_m probs[m] (probs [M, N, K]) -> [N]."""
    return np.einsum("m,mnk->nk", normalised(w), probs).argmax(axis=1)


def fit_ensemble_weights(
    probs: np.ndarray,
    y: np.ndarray,
    score: Callable[[np.ndarray, np.ndarray], float],
    seed: int = 0,
    maxiter: int = 50,
    popsize: int = 15,
) -> tuple[np.ndarray, float]:
    """Weights [M] (summing to 1) maximising `score(y, ensemble prediction)` over members'
    probabilities [M, N, K], by seeded differential evolution; and that score."""
    from scipy.optimize import differential_evolution  # on use: keeps scipy out of start-up

    m = probs.shape[0]
    result = differential_evolution(
        lambda w: -score(y, ensemble_predictions(probs, w)),
        bounds=[(0.0, 1.0)] * m,
        x0=np.full(m, 1 / m),
        seed=seed,
        maxiter=maxiter,
        popsize=popsize,
        polish=False,  # the score is piecewise constant: no gradient to polish with
    )
    return normalised(result.x), float(-result.fun)


@register_distiller("takd")
class AssistantEnsemble(Distiller):
    """TAKD assistant ensemble (Mirzadeh et al. 2020): KD from assistants, weights fitted on val."""

    params_model = TAKDParams
    params: TAKDParams
    teacher_count = (2, None)
    example = Example(teachers={"a1": ("acc", "gyro"), "a2": ("acc",)}, params={"maxiter": 5})

    def __init__(
        self,
        student: ViewModel,
        teachers: Mapping[str, FrozenTeacher],
        context: DistillContext,
        params: Mapping[str, Any],
    ) -> None:
        super().__init__(student, teachers, context, params)
        self.register_buffer("weights", torch.full((len(teachers),), 1 / len(teachers)))

    def prepare(self, val: ValidationSplit) -> dict[str, Any]:
        """Fit the ensemble weights on the validation windows (module docstring)."""
        p = self.params
        logits = torch.stack([val.logits(t) for t in self.teachers.values()])
        probs = F.softmax(logits, dim=2).numpy()
        uniform = np.full(len(probs), 1 / len(probs))
        report: dict[str, Any] = {
            "val_macro_f1_uniform": val.score(val.y, ensemble_predictions(probs, uniform))
        }
        if p.weights == "fit":
            w, fitted = fit_ensemble_weights(probs, val.y, val.score, p.seed, p.maxiter, p.popsize)
            self.weights.copy_(torch.from_numpy(w))
            report.update(val_macro_f1_fitted=fitted, validation_use=VALIDATION_USE)
        report["weights"] = dict(zip(self.teachers, self.weights.tolist(), strict=True))
        return report

    def forward_train(
        self, batch: Batch, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        p = self.params
        logits = self.student(batch.x).logits
        t_logits = torch.stack([t(batch.teacher_x).logits for t in self.teachers.values()])
        p_ens = torch.einsum("m,mbk->bk", self.weights, F.softmax(t_logits / p.temperature, 2))
        kl = kl_rows(p_ens.clamp_min(1e-12).log(), logits / p.temperature, 1.0).mean()
        return logits, {
            "ce": (1 - p.alpha) * soft_cross_entropy(logits, batch.y_soft),
            "kd": p.alpha * p.temperature**2 * kl,
        }
