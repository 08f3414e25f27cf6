"""The run card: what a finished run's model is and what it was trained on, in one typed file.

`fit` writes it as `model.json` beside the weights (`model.safetensors`); everything that reads a
run directory (evaluate, export, bench, teacher loading, the latency comparison) reads this card
instead of string keys of a JSON file. A card carries `format_version`; a card of another
version, a corrupt or a missing one is refused with one line naming the file and the problem.
It records where the model was trained: the device, the torch and CUDA versions, whether
torch's deterministic algorithms were on and whether mixed precision was (cards written before
these fields existed were all trained on the CPU, deterministically, in float32: the defaults).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from data_prep.windowset import SPLITS, WindowSet
from harkd.config import ConfigError, RunConfig
from harkd.train.rundir import RunDir, atomic_write_json

#: the card format this harkd writes and reads (raise it when a field changes meaning)
CARD_FORMAT = 1


#: what to do about a damaged file of a finished run (its card or its weights)
DAMAGED = "the file is damaged: delete the run folder and train the run again"


class CardError(ConfigError):
    """A run card that cannot be used: missing, not JSON, of another format or invalid."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Normalisation(_Frozen):
    """Per-channel training-split mean and std of the model's view, in the view's order."""

    mean: list[float]
    std: list[float]


class SplitSubjects(_Frozen):
    """The subjects of each split of the data the run was trained on."""

    train: list[str]
    val: list[str]
    test: list[str]
    pool: list[str] = Field(default_factory=list, description="unlabelled training subjects")

    def seen(self) -> set[str]:
        """Subjects whose windows the run trained on or selected its model with."""
        return set(self.train) | set(self.val) | set(self.pool)


class Scores(_Frozen):
    accuracy: float
    macro_f1: float
    ece: float


class RunCard(_Frozen):
    """The deployable model of a run: how to rebuild it, what it reads, what it scored."""

    format_version: int
    model: str = Field(description="registry name (harkd.models)")
    params: dict[str, Any] = Field(description="constructor keyword arguments")
    n_params: int
    in_channels: int
    num_classes: int
    view: list[str] = Field(description="the channel groups it reads")
    channel_indices: list[int] = Field(description="the view's channels in the training data")
    channels: list[str] = Field(description="names of those channels")
    label_names: list[str]
    window: int = Field(description="samples per window")
    rate_hz: float
    norm: Normalisation
    data_hash: str | None = Field(description="config hash of the training WindowSet")
    split_subjects: SplitSubjects
    method: str
    seed: int
    best_epoch: int | None
    metrics: dict[str, Scores] = Field(description="split -> scores of the selected model")
    config_hash: str
    torch_version: str
    device: str = Field("cpu", description="the device it trained on: cpu or cuda:N")
    device_name: str | None = Field(None, description="the GPU's name (None on the CPU)")
    cuda_version: str | None = Field(None, description="torch's CUDA (None on the CPU)")
    deterministic: bool = Field(True, description="torch's deterministic algorithms were on")
    amp: bool = Field(False, description="bfloat16 mixed precision in training")

    @model_validator(mode="after")
    def _consistent(self) -> RunCard:
        sizes = {
            "in_channels": self.in_channels,
            "channel_indices": len(self.channel_indices),
            "channels": len(self.channels),
            "norm.mean": len(self.norm.mean),
            "norm.std": len(self.norm.std),
        }
        if len(set(sizes.values())) != 1:
            raise ValueError(f"the view's sizes disagree: {sizes}")
        if len(self.label_names) != self.num_classes:
            raise ValueError(
                f"num_classes {self.num_classes} but {len(self.label_names)} label_names"
            )
        return self

    @property
    def input_shape(self) -> tuple[int, int]:
        """(channels, samples) of one input window."""
        return self.in_channels, self.window


def read_card(run_dir: str | Path) -> RunCard:
    """The card of a finished run; a `CardError` naming the file says what is wrong."""
    rd = RunDir(Path(run_dir))
    path = rd.card
    if not path.is_file():
        raise CardError(
            f"{path}: not found; is {rd.root} a finished `harkd train` / `harkd distill` run?"
        )
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CardError(f"{path}: not a run card: invalid JSON ({err}); {DAMAGED}") from None
    if not isinstance(raw, dict):
        raise CardError(f"{path}: not a run card: expected a JSON object")
    version = raw.get("format_version")
    if version != CARD_FORMAT:
        raise CardError(
            f"{path}: run card format {version!r}, this harkd reads format {CARD_FORMAT} "
            f"(written by another harkd version); train the run again"
        )
    try:
        return RunCard.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "card"
        more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
        raise CardError(f"{path}: invalid run card: {where}: {first['msg']}{more}") from None


def write_card(run_dir: RunDir, card: RunCard) -> None:
    """Write the card atomically."""
    atomic_write_json(run_dir.card, card.model_dump(mode="json"))


def card_for_run(
    cfg: RunConfig,
    ws: WindowSet,
    channels: list[int],
    n_params: int,
    best_epoch: int | None,
    metrics: dict[str, dict[str, Any]],
    device: torch.device,
) -> RunCard:
    """The card of a run of `cfg` on `ws` whose model reads `channels`, trained on `device`,
    and scored `metrics`."""
    on_gpu = device.type == "cuda"
    norm = ws.meta["norm"]
    subjects = ws.meta["split_subjects"]
    return RunCard(
        format_version=CARD_FORMAT,
        model=cfg.model.name,
        params=cfg.model.params,
        n_params=n_params,
        in_channels=len(channels),
        num_classes=ws.num_classes,
        view=list(cfg.model.view),
        channel_indices=channels,
        channels=[ws.channels[i] for i in channels],
        label_names=ws.label_names,
        window=int(ws.X.shape[-1]),
        rate_hz=float(ws.meta["rate_hz"]),
        norm=Normalisation(
            mean=[float(norm["mean"][i]) for i in channels],
            std=[float(norm["std"][i]) for i in channels],
        ),
        data_hash=ws.meta.get("config_hash"),
        split_subjects=SplitSubjects(
            **{s: [str(v) for v in subjects.get(s, [])] for s in (*SPLITS, "pool")}
        ),
        method=cfg.distill.method,
        seed=cfg.train.seed,
        best_epoch=best_epoch,
        metrics={
            split: Scores(**{k: metrics[split][k] for k in Scores.model_fields})
            for split in SPLITS
        },
        config_hash=cfg.config_hash(),
        torch_version=torch.__version__,
        device=str(device),
        device_name=torch.cuda.get_device_name(device) if on_gpu else None,
        cuda_version=torch.version.cuda if on_gpu else None,
        deterministic=cfg.train.deterministic,
        amp=cfg.train.amp,
    )
