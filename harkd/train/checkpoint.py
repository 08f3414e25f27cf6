"""Checkpoints in safetensors with JSON beside them; nothing is ever unpickled.

- model.safetensors + model.json: the deployable model (the student) and its run card
  (`harkd.train.runcard.RunCard`: what rebuilds and feeds it, what it was trained on).
- last.safetensors (+ a readable copy of its state in last.json): everything needed to resume
  at an epoch boundary. The training state (JSON) is stored inside the safetensors header, so
  the tensors and the state it describes are replaced together by one atomic rename.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save
from torch import nn

from harkd.models.base import HARModel, build_model
from harkd.train.runcard import DAMAGED, CardError, RunCard, read_card, write_card
from harkd.train.rundir import RunDir, atomic_write_bytes, atomic_write_json

STATE_KEY = "harkd.state"


def _tensor_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None) -> bytes:
    # clone: state dicts may share storage between entries, which safetensors refuses
    plain = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    return save(plain, metadata=metadata)


def save_model(run_dir: RunDir, model: nn.Module, card: RunCard) -> None:
    """Write the deployable model's weights and its run card."""
    atomic_write_bytes(run_dir.model, _tensor_bytes(model.state_dict(), {"format": "pt"}))
    write_card(run_dir, card)


def load_run_model(run_dir: str | Path) -> tuple[HARModel, RunCard]:
    """The model of a finished run (eval mode) and its run card (`CardError` names the file)."""
    rd = RunDir(Path(run_dir))
    card = read_card(rd.root)
    if not rd.model.is_file():
        raise CardError(f"{rd.model}: not found; the run card {rd.card} has no weights beside it")
    try:
        model = build_model(card.model, card.in_channels, card.num_classes, card.window,
                            **card.params)  # fmt: skip
    except (KeyError, TypeError, ValueError) as err:
        raise CardError(f"{rd.card}: cannot build model {card.model!r}: {err}") from None
    try:
        state = load_file(str(rd.model))
    except (SafetensorError, OSError) as err:
        raise CardError(f"{rd.model}: not readable safetensors ({err}); {DAMAGED}") from None
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # a tensor of another shape
        problem = str(err).strip().splitlines()[-1].strip()
        raise CardError(f"{rd.model}: weights do not fit the card's model: {problem}") from None
    if result.missing_keys or result.unexpected_keys:
        raise CardError(
            f"{rd.model}: weights do not fit model {card.model!r} with params "
            f"{card.params}: missing {result.missing_keys}, unexpected {result.unexpected_keys}"
        )
    return model.eval(), card


def save_checkpoint(
    run_dir: RunDir, tensors: dict[str, torch.Tensor], state: dict[str, Any]
) -> None:
    """Write last.safetensors (tensors + state in its header) and last.json (readable copy)."""
    blob = json.dumps(state)
    atomic_write_bytes(run_dir.last, _tensor_bytes(tensors, {STATE_KEY: blob}))
    atomic_write_json(run_dir.last_meta, state)


def load_checkpoint(run_dir: RunDir) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The tensors and state of last.safetensors, or None when there is none."""
    if not run_dir.last.is_file():
        return None
    try:
        with safe_open(str(run_dir.last), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - no iter
    except SafetensorError as err:
        raise ValueError(f"{run_dir.last}: not a readable checkpoint ({err}); delete it to "
                         "train this run again from its first epoch") from None
    if STATE_KEY not in header:
        raise ValueError(f"{run_dir.last}: no training state in its header")
    return tensors, json.loads(header[STATE_KEY])


def optimizer_to_tensors(
    optimizer: torch.optim.Optimizer, prefix: str = "optim"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimiser state split into tensors (for safetensors) and plain values (JSON)."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, Any] = {"param_groups": sd["param_groups"], "state": {}}
    for pid, entries in sd["state"].items():
        plain["state"][str(pid)] = {}
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{pid}.{key}"] = value
            else:
                plain["state"][str(pid)][key] = value
    return tensors, plain


def optimizer_from_tensors(
    tensors: dict[str, torch.Tensor], plain: dict[str, Any], prefix: str = "optim"
) -> dict[str, Any]:
    """The optimiser `state_dict` that `optimizer_to_tensors` split."""
    state: dict[int, dict[str, Any]] = {int(k): dict(v) for k, v in plain["state"].items()}
    for name, value in with_prefix(tensors, prefix).items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": plain["param_groups"]}


def with_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries under `prefix.`, with the prefix removed."""
    n = len(prefix) + 1
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
