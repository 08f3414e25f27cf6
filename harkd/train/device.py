"""The device a run trains on (`train.device`) and its mixed precision (`train.amp`).

`auto` takes CUDA when torch sees a GPU, else the CPU, and says in one line which it chose;
`cpu`; `cuda` (the first GPU, or the GPU a grid placed the run on); `cuda:N` (that GPU,
whatever the placement). Asking for CUDA where torch sees none is a `ConfigError` naming the
setting and why. Only training and its evaluation move: export and latency stay on the CPU
(onnxruntime's CPU provider is the deployment target), and weights are always saved from the
CPU, so a model trained on a GPU exports exactly like one trained on the CPU.

Mixed precision runs the training forward passes under `torch.autocast` in bfloat16 (no loss
scaling: bfloat16 has float32's exponent range); evaluation stays in float32, as deployed.
"""

from __future__ import annotations

import contextlib
import re
from contextlib import AbstractContextManager

import torch

from harkd.config import DEVICE_PATTERN, ConfigError

#: the autocast dtype of `train.amp`
AMP_DTYPE = torch.bfloat16


def cuda_device_count() -> int:
    """CUDA devices torch sees (0 without CUDA)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def wants_cuda(setting: str, gpus_visible: bool) -> bool:
    """Whether a run with `train.device` = `setting` trains on a GPU where `gpus_visible`
    says whether any is seen (`auto` follows it; `cuda` and `cuda:N` always want one)."""
    return setting.startswith("cuda") or (setting == "auto" and gpus_visible)


def describe_device(device: torch.device) -> str:
    """`cpu`, or `cuda:0 (NVIDIA H200)`."""
    if device.type != "cuda":
        return str(device)
    return f"{device} ({torch.cuda.get_device_name(device)})"


def resolve_device(
    setting: str, placed: str | None = None, what: str = "train.device"
) -> tuple[torch.device, str | None]:
    """The torch device of `setting` (`train.device`, or the option named `what`), and for
    `auto` a line saying which device it chose (None otherwise).

    `placed`: the device a grid worker was given (`cuda:N`, or `cpu`); it stands for `auto`,
    and for `cuda` when it is a GPU. Raises `ConfigError` when the setting asks for a GPU
    torch does not see.
    """
    if not re.match(DEVICE_PATTERN, setting):
        raise ConfigError(f"{what}={setting!r}: expected auto, cpu, cuda or cuda:N")
    if placed is not None and (setting == "auto" or (setting == "cuda" and placed != "cpu")):
        device = _checked(torch.device(placed), f"{what}={setting} (placed on {placed})")
        note = f"{what} auto: {describe_device(device)} (placed by the grid)"
        return device, note if setting == "auto" else None
    if setting == "cpu":
        return torch.device("cpu"), None
    if setting == "auto":
        if cuda_device_count() == 0:
            return torch.device("cpu"), f"{what} auto: cpu ({no_cuda_reason()})"
        device = torch.device("cuda", torch.cuda.current_device())
        return device, f"{what} auto: {describe_device(device)}"
    device = torch.device("cuda:0" if setting == "cuda" else setting)
    return _checked(device, f"{what}={setting}"), None


def _checked(device: torch.device, asked: str) -> torch.device:
    """`device`, if torch sees it (`asked`: the setting, for the message)."""
    if device.type == "cpu":
        return device
    count = cuda_device_count()
    if count == 0:
        raise ConfigError(
            f"{asked}: torch sees no CUDA device ({no_cuda_reason()}); use auto or cpu"
        )
    if device.index is not None and device.index >= count:
        raise ConfigError(
            f"{asked}: torch sees {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
        )
    return device


def no_cuda_reason() -> str:
    """Why torch sees no GPU: a build without CUDA, or none found."""
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is built without CUDA"
    return f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no GPU"


def check_amp(device: torch.device, amp: bool) -> None:
    """Refuse `train.amp` on a GPU without bfloat16 (before Ampere)."""
    if amp and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(
            f"train.amp: {describe_device(device)} has no bfloat16 support; set train.amp=false"
        )


def autocast(device: torch.device, amp: bool) -> AbstractContextManager:
    """The context a training forward pass runs in: bfloat16 autocast with `amp`, else none."""
    if not amp:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=AMP_DTYPE)
