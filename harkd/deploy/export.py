"""ONNX export of harkd models, checked against PyTorch on real windows.

The exported graph takes raw sensor windows `windows` [batch, channels, time] (batch dynamic)
and returns `logits` [batch, classes]. The view's normalisation is either folded in (into
the model's first convolution when it offers `fold_input_normalization`, else as a first
`Normalize` node) or recorded in the metadata for the caller to apply.
Everything a deployment needs (model name and parameters, view, channel indices, label names,
normalisation) travels in the file's `metadata_props`, so `harkd bench` and a watch app can use
any exported file without the run directory.

Tensor and node names are shortened after export (the exporter's module paths take more room
than the weights of a tiny student; see `harkd.deploy.slim`), docstrings are dropped.
`export_run` exports a finished run, and its int8 version with `harkd.deploy.quantize`.
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from harkd.deploy.onnx_io import (
    INPUT_NAME,
    NORM_KEY,
    OUTPUT_NAME,
    onnx_logits,
    save_onnx,
    set_metadata,
)
from harkd.deploy.quantize import calibration_windows, compare_int8, quantize_onnx
from harkd.deploy.slim import slim_graph
from harkd.models.base import LogitsOnly, deployment_form
from harkd.train.runcard import RunCard
from harkd.train.rundir import atomic_write_json

OPSET = 17
#: the PyTorch/ONNX check: every logit within ATOL + RTOL * |PyTorch logit| (float32 kernels
#: sum in another order; a GRU over 128 steps drifts by ~1e-4 of its logit scale), and argmax
#: agreement on at least MIN_AGREEMENT of the windows
ATOL = 1e-4
RTOL = 1e-3
MIN_AGREEMENT = 0.999

Normalization = tuple[Sequence[float], Sequence[float]]


class Normalize(nn.Module):
    """`(x - mean) / std` per channel of [B, C, T] windows, as one inference BatchNormalization
    (running mean = mean, running variance = std², epsilon 0, no affine).

    One node instead of Sub + Div: on onnxruntime each node has a fixed cost that is a sizeable
    part of a tiny student's latency (measured: Sub + Div 0.8 µs, BatchNormalization 0.3 µs over
    no normalisation, for a 7 µs model; benchmarks/bench_latency.py).
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        mean_t = torch.as_tensor(np.asarray(mean, dtype=np.float32)).reshape(1, -1, 1)
        std_t = torch.as_tensor(np.asarray(std, dtype=np.float32)).reshape(1, -1, 1)
        if mean_t.shape != std_t.shape:
            raise ValueError(f"normalisation mean has {mean_t.numel()} values, std {std_t.numel()}")
        if not bool((std_t > 0).all()):
            raise ValueError(f"normalisation std must be > 0, got {std_t.flatten().tolist()}")
        self.register_buffer("mean", mean_t.flatten())
        self.register_buffer("var", std_t.flatten() ** 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.batch_norm(x, self.mean, self.var, training=False, eps=0.0)


def logits_module(
    model: nn.Module, normalization: Normalization | None, deploy: bool = False
) -> nn.Module:
    """Raw windows -> logits: `LogitsOnly(model)`, preceded by `Normalize` when given.

    With `deploy`, the module is the model's deployment form, built on a copy (`model` is never
    changed) from what the model offers: `reparameterize()` merges training-time branches
    (the tiny students' RepConvBNAct), `fold_input_normalization(mean, std)` takes the
    normalisation into the first convolution's weights instead of a `Normalize` node. Each
    saves onnxruntime nodes, whose fixed cost dominates a tiny student at batch 1.
    """
    fold = deploy and normalization is not None and hasattr(model, "fold_input_normalization")
    if deploy:
        deployed = deployment_form(model)
        if fold:
            # deployment_form copies only when it changes something; folding needs a copy too
            deployed = copy.deepcopy(model) if deployed is model else deployed
            deployed.fold_input_normalization(*normalization)
        model = deployed
    core = LogitsOnly(model)
    if normalization is None or fold:
        return core.eval()
    return nn.Sequential(Normalize(*normalization), core).eval()


def export_onnx(
    model: nn.Module,
    path: str | Path,
    in_channels: int,
    window: int,
    metadata: dict[str, Any],
    normalization: Normalization | None = None,
    fold_normalization: bool = True,
) -> Path:
    """Export the deployment form of `model` (a HARModel; see `logits_module`) to ONNX at
    `path` (opset 17, dynamic batch).

    Args:
        metadata: written to `metadata_props` (values that are not strings are JSON-encoded).
        normalization: (mean, std) per input channel, or None when the model takes its input
            as is.
        fold_normalization: fold the normalisation into the graph (default): into the model's
            weights when it offers `fold_input_normalization`, else as a first `Normalize`
            node; otherwise the graph expects normalised windows and
            the statistics are recorded under `harkd.normalization` with `"folded": false`.
    """
    if in_channels != (len(normalization[0]) if normalization is not None else in_channels):
        raise ValueError(
            f"normalisation has {len(normalization[0])} channels, the model {in_channels}"
        )
    module = logits_module(model, normalization if fold_normalization else None, deploy=True)
    proto = trace_onnx(module, (1, in_channels, window))
    slim_graph(proto)
    props = dict(metadata)
    if normalization is not None:
        mean, std = normalization
        props[NORM_KEY] = {
            "mean": [float(v) for v in mean],
            "std": [float(v) for v in std],
            "folded": fold_normalization,
        }
    set_metadata(proto, props)
    proto.producer_name = "harkd"
    onnx.checker.check_model(proto)
    return save_onnx(proto, path)


def trace_onnx(module: nn.Module, input_shape: tuple[int, ...]) -> onnx.ModelProto:
    """`module` (one tensor in, logits out) as an ONNX graph: opset 17, input `windows` and
    output `logits` with a dynamic batch axis (the first), constants folded, traced in eval
    mode on zeros of `input_shape` (the module's own mode is left as it was)."""
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # the TorchScript exporter is deprecated in favour of the dynamo one, which needs
        # onnxscript (not a dependency); the TorchScript path is still supported in torch 2.x
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            (torch.zeros(input_shape),),
            buffer,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    return onnx.load_from_string(buffer.getvalue())


@dataclass
class ExportCheck:
    """PyTorch vs onnxruntime on the same raw windows."""

    windows: int
    max_abs_diff: float
    argmax_agreement: float
    #: the largest amount by which a logit's difference exceeds its allowance (<= 0: all within)
    max_excess: float
    atol: float = ATOL
    rtol: float = RTOL
    min_agreement: float = MIN_AGREEMENT

    @property
    def passed(self) -> bool:
        return self.max_excess <= 0 and self.argmax_agreement >= self.min_agreement

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def check_export(
    model: nn.Module,
    path: str | Path,
    windows: np.ndarray,
    normalization: Normalization | None,
) -> ExportCheck:
    """Compare the exported file with the PyTorch model on raw windows [N, C, T]."""
    module = logits_module(model, normalization)
    with torch.inference_mode():
        ref = torch.cat(
            [module(torch.from_numpy(np.ascontiguousarray(windows[i : i + 512], np.float32)))
             for i in range(0, len(windows), 512)]
        ).numpy()
    return compare_logits(ref, onnx_logits(path, windows))


def compare_logits(ref: np.ndarray, got: np.ndarray) -> ExportCheck:
    """The check on two [N, classes] logit arrays: PyTorch's (`ref`) and the export's."""
    diff = np.abs(ref - got)
    return ExportCheck(
        windows=len(ref),
        max_abs_diff=float(diff.max()),
        argmax_agreement=float((ref.argmax(1) == got.argmax(1)).mean()),
        max_excess=float((diff - (ATOL + RTOL * np.abs(ref))).max()),
    )


#: written into export.json; bumped whenever the files `export_run` writes change for the same
#: weights (2: int8 per tensor after cross-layer equalization), so that an older export is
#: redone instead of reused
EXPORT_FORMAT = 2


@dataclass
class ExportResult:
    """What `export_run` wrote and measured (also saved as <run_dir>/export.json)."""

    onnx_path: Path
    check: ExportCheck
    int8_path: Path | None = None
    int8: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "export_format": EXPORT_FORMAT,
            "onnx_path": str(self.onnx_path),
            "check": self.check.to_dict(),
            "int8_path": None if self.int8_path is None else str(self.int8_path),
            "int8": self.int8,
        }


def run_metadata(card: RunCard) -> dict[str, Any]:
    """The deployment facts of a run's card, as written into the ONNX metadata."""
    keys = ("model", "params", "in_channels", "num_classes", "window", "view",
            "channel_indices", "label_names")
    return {f"harkd.{k}": getattr(card, k) for k in keys}


def run_normalization(card: RunCard) -> Normalization:
    """(mean, std) of the run's view from its card (its training-split statistics)."""
    return card.norm.mean, card.norm.std


def load_data_for_run(run_dir: Path, data_cfg: str | Path | Any = None) -> Any:
    """The WindowSet of a run: from `data_cfg` (a data YAML or a DataConfig) when given, else
    from the `data` and `data_overrides` of <run_dir>/config.yaml."""
    from data_prep.config import DataConfig, load_data_config
    from data_prep.pipeline import prepare

    if isinstance(data_cfg, DataConfig):
        return prepare(data_cfg, progress=False)
    if data_cfg is not None:
        return prepare(load_data_config(data_cfg), progress=False)
    from harkd.config import load_run_config

    config = run_dir / "config.yaml"
    if not config.is_file():
        raise FileNotFoundError(f"{config}: not found; give the data protocol with --data CONFIG")
    from harkd.data import data_config

    return prepare(data_config(load_run_config(config)), progress=False)


def export_run(
    run_dir: str | Path,
    int8: bool = False,
    data_cfg: str | Path | Any = None,
    int8_format: str = "qoperator",
    calibration: int = 512,
    per_channel: bool = False,
) -> ExportResult:
    """Export a finished run to <run_dir>/model.onnx (and model.int8.onnx), checked on its
    data's test windows; int8 is calibrated on training windows and compared on the test split.
    Writes <run_dir>/export.json and raises when the PyTorch/ONNX check fails."""
    from harkd.train.checkpoint import load_run_model
    from harkd.train.compat import check_compatible

    run_dir = Path(run_dir)
    model, card = load_run_model(run_dir)
    ws = load_data_for_run(run_dir, data_cfg)
    channels = check_compatible(card, ws, "export", where=str(run_dir))
    norm = run_normalization(card)
    path = export_onnx(model, run_dir / "model.onnx", *card.input_shape, run_metadata(card), norm)
    x = ws.X[:, channels]
    test, train = ws.mask("test"), ws.mask("train")
    result = ExportResult(path, check_export(model, path, x[test], norm))
    if int8:
        result.int8_path = quantize_onnx(
            path, run_dir / "model.int8.onnx", calibration_windows(x[train], calibration),
            int8_format, per_channel=per_channel,
        )
        result.int8 = compare_int8(path, result.int8_path, x[test], ws.y[test]).to_dict()
    atomic_write_json(run_dir / "export.json", result.to_dict())
    if not result.check.passed:
        raise RuntimeError(
            f"{path}: ONNX differs from PyTorch on {result.check.windows} test windows: "
            f"max |logit diff| {result.check.max_abs_diff:.2e} (allowed {ATOL:.0e} + "
            f"{RTOL:.0e} x |logit|, exceeded by up to {result.check.max_excess:.2e}), "
            f"argmax agreement {result.check.argmax_agreement:.4f} (needed {MIN_AGREEMENT})"
        )
    return result
