"""`srkd`: single-recording distillation, the 1-D analogue of Asano & Saeed, "Extrapolating from
a Single Image to a Thousand Classes using Distillation" (ICLR 2023; the paper's audio
experiment is the closest precedent; its public code was not copied).

The student learns from one recording only: `training_set` keeps the training windows of one
recording (`subject` and `session`; by default the training recording with the most windows,
`seconds` keeping only its first seconds for a study of the recording's length) and drops
every other training window, so the batches are cut from it alone. Its windows are repeated
to `epoch_windows` per epoch (by default as many as the training split holds), each copy
augmented afresh: the student takes as many steps as a run on every training window, so a
shorter recording means less signal, not less training. The run's augmentation
policy does the rest, and should be heavy: crops (`window_slice`), warps (`timewarp`,
`magwarp`), rotations and mixing (`mixup`, `cutmix`) from `harkd.augment`
(configs/distill/srkd.yaml). The teacher sees the same augmented windows (`augment.teacher_input:
same`), and its softened outputs on them are the only training signal:

    L = T^2 KL(p_t^T(x~) || p_s^T(x~)),   x~ an augmented crop of the recording,

labels unused. The student is evaluated on the real test subjects as every run is.

Departures: a recording here is the labelled, windowed part of one session (what `data_prep`
keeps of it after the purity and null-class rules), not the raw stream; the paper's crops of a
large image become augmented windows of a 1-D signal; the validation windows select the model
unless `train.selection: last`.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field

from data_prep.windowset import WindowSet
from harkd.distill.base import (
    Batch,
    Distiller,
    Example,
    OneTeacherParams,
    register_distiller,
)
from harkd.distill.losses import kd_kl


class SRKDParams(OneTeacherParams):
    temperature: float = Field(4.0, gt=0, description="softmax temperature T")
    subject: str | None = Field(None, description="the recording's subject (default: the "
                                "training recording with the most windows)")
    session: str | None = Field(None, description="the recording's session (default: the "
                                "subject's training recording with the most windows)")
    seconds: float | None = Field(None, gt=0, description="keep only the recording's first "
                                  "seconds (default: all of it)")
    epoch_windows: int | None = Field(None, gt=0, description="windows per epoch, the "
                                      "recording's repeated (default: the training split's "
                                      "count)")


def pick_recording(ws: WindowSet, p: SRKDParams) -> int:
    """Index (into `meta["recordings"]`) of the training recording `p` names."""
    recordings = ws.meta["recordings"]
    ids, counts = np.unique(ws.recording[ws.mask("train")], return_counts=True)
    names = [f"{recordings[i]['subject']}/{recordings[i]['session']}" for i in ids]
    fits = [
        (int(n), int(i)) for i, n in zip(ids, counts, strict=True)
        if (p.subject is None or str(recordings[i]["subject"]) == p.subject)
        and (p.session is None or str(recordings[i]["session"]) == p.session)
    ]
    if not fits:
        raise ValueError(
            f"method 'srkd': no training recording has subject={p.subject!r} "
            f"session={p.session!r} (distill.params); training recordings: {names}"
        )
    return max(fits, key=lambda f: (f[0], -f[1]))[1]  # most windows, then the first


@register_distiller("srkd")
class SRKD(Distiller):
    """Single-recording KD (after Asano & Saeed 2023): one augmented recording, teacher outputs."""

    params_model = SRKDParams
    params: SRKDParams
    teacher_count = (1, None)
    example = Example(teachers={"t": ("acc", "gyro")})

    @classmethod
    def training_set(cls, ws: WindowSet, params: SRKDParams) -> WindowSet:
        """Only the training windows of the one recording, repeated to `epoch_windows` (module
        docstring)."""
        rec = pick_recording(ws, params)
        train = ws.mask("train")
        keep = train & (ws.recording == rec)
        if params.seconds is not None:
            first = ws.start[keep].min()
            span = params.seconds * float(ws.meta["rate_hz"])
            keep &= ws.start + ws.X.shape[-1] <= first + span
            if not keep.any():
                raise ValueError(
                    f"method 'srkd': distill.params.seconds={params.seconds} is shorter than "
                    f"one window ({ws.X.shape[-1] / float(ws.meta['rate_hz'])} s)"
                )
        return ws.take(np.resize(np.flatnonzero(keep), params.epoch_windows or int(train.sum())))

    def forward_train(
        self, batch: Batch, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = self.student(batch.x).logits
        t_logits = self.teachers[self.teacher_name](batch.teacher_x).logits
        return logits, {"kd": kd_kl(logits, t_logits, self.params.temperature)}
