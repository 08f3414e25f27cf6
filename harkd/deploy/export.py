"""ONNX export of harkd models, checked against PyTorch on real windows.

The exported graph takes raw sensor windows `windows` [batch, channels, time] (batch dynamic)
and returns `logits` [batch, classes]. The view's normalisation is either folded in (into
the model's first convolution when it offers `fold_input_normalization`, else as a first
`Normalize` node) or recorded in the metadata for the caller to apply.
Everything a deployment needs (model name and parameters, view, channel indices, label names,
normalisation) travels in the file's `metadata_props`, so `harkd bench` and a watch app can use
any exported file without the run directory.

Tensor and node names are shortened after export (the exporter's module paths take more room
than the weights of a tiny student; see `slim_graph`), docstrings are dropped.
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from harkd.models.base import LogitsOnly, deployment_form

OPSET = 17
INPUT_NAME = "windows"
OUTPUT_NAME = "logits"
#: metadata key holding the normalisation: {"mean": [C], "std": [C], "folded": bool}
NORM_KEY = "harkd.normalization"
#: logit tolerance and argmax agreement the PyTorch/ONNX check demands (issue 8)
MAX_ABS_DIFF = 1e-4
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
    saves onnxruntime nodes, whose fixed cost dominates a tiny student at batch 1 (issue 8).
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = logits_module(model, normalization if fold_normalization else None, deploy=True)
    example = torch.zeros(1, in_channels, window)
    tmp = path.with_name(path.name + ".tmp")
    with torch.no_grad(), warnings.catch_warnings():
        # the TorchScript exporter is deprecated in favour of the dynamo one, which needs
        # onnxscript (not a dependency); the TorchScript path is still supported in torch 2.x
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            (example,),
            str(tmp),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    proto = onnx.load(str(tmp))
    tmp.unlink()
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
    onnx.save(proto, str(path))
    return path


def slim_graph(proto: onnx.ModelProto) -> None:
    """Shorten names and drop what onnxruntime does not need, in place.

    Internal tensors get 1-2 letter names, nodes none (the graph input and output keep theirs);
    initializers holding the same values are merged into one (the quantizer writes one zero
    point per tensor, most of them equal); attributes equal to the operator's default
    (`_DEFAULT_ATTRIBUTES`), docstrings, `value_info` shape annotations (onnxruntime infers
    them again) and opset imports of domains no node uses are dropped. The TorchScript
    exporter names tensors after module paths (`/model/blocks.0/blocks.0.1/.../Relu_output_0`)
    and the quantizer imports eight domains: for a few-thousand-parameter student that is more
    bytes than its int8 weights, which would keep the int8 file from being ~4x smaller than
    the float one.
    """
    graph = proto.graph
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    same = _merge_equal_initializers(graph)
    mapping: dict[str, str] = {}

    def rename(name: str) -> str:
        name = same.get(name, name)
        if not name or name in keep:
            return name
        if name not in mapping:
            mapping[name] = _short_name(len(mapping))
        return mapping[name]

    for init in graph.initializer:
        init.name = rename(init.name)
        init.doc_string = ""
    for node in graph.node:
        node.name = ""
        node.doc_string = ""
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
        defaults = _DEFAULT_ATTRIBUTES.get(node.op_type, {})
        kept = [a for a in node.attribute if not _is_default(a, defaults.get(a.name))]
        del node.attribute[:]
        node.attribute.extend(kept)
    del graph.value_info[:]
    used = {node.domain or "" for node in graph.node}
    opsets = [o for o in proto.opset_import if (o.domain or "") in used | {""}]
    del proto.opset_import[:]
    proto.opset_import.extend(opsets)
    graph.doc_string = ""
    proto.doc_string = ""


_CONV_DEFAULTS = {"dilations": 1, "pads": 0, "strides": 1, "group": 1}
#: operator -> attribute -> its default (a list attribute is default when every entry is)
_DEFAULT_ATTRIBUTES: dict[str, dict[str, float]] = {
    "Conv": _CONV_DEFAULTS,
    "QLinearConv": _CONV_DEFAULTS,
    "ConvInteger": _CONV_DEFAULTS,
    "Gemm": {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0},
    "QGemm": {"alpha": 1.0, "transA": 0, "transB": 0},
    "Flatten": {"axis": 1},
}


def _is_default(attr: onnx.AttributeProto, default: float | None) -> bool:
    if default is None:
        return False
    value = onnx.helper.get_attribute_value(attr)
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    return bool(values) and all(v == default for v in values)


def _merge_equal_initializers(graph: onnx.GraphProto) -> dict[str, str]:
    """Drop initializers equal (type, shape, values) to an earlier one; returns the renaming."""
    first: dict[tuple, str] = {}
    same: dict[str, str] = {}
    kept = []
    for init in graph.initializer:
        key = (init.data_type, tuple(init.dims), numpy_helper.to_array(init).tobytes())
        if key in first:
            same[init.name] = first[key]
        else:
            first[key] = init.name
            kept.append(init)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return same


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _short_name(index: int) -> str:
    """0 -> "a", 51 -> "Z", 52 -> "aa", ... (letters only, unique per index)."""
    out = ""
    index += 1
    while index:
        index, digit = divmod(index - 1, len(_LETTERS))
        out = _LETTERS[digit] + out
    return out


def set_metadata(proto: onnx.ModelProto, props: dict[str, Any]) -> None:
    """Replace `metadata_props` by `props` (non-string values JSON-encoded, keys sorted)."""
    del proto.metadata_props[:]
    for key in sorted(props):
        value = props[key]
        entry = proto.metadata_props.add()
        entry.key = key
        entry.value = value if isinstance(value, str) else json.dumps(value)


def read_metadata(proto: onnx.ModelProto) -> dict[str, Any]:
    """`metadata_props` as a dict, JSON values decoded (plain strings stay strings)."""
    out: dict[str, Any] = {}
    for entry in proto.metadata_props:
        try:
            out[entry.key] = json.loads(entry.value)
        except json.JSONDecodeError:
            out[entry.key] = entry.value
    return out


def input_transform(metadata: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    """What to do to raw windows before feeding an exported file: normalise them when its
    normalisation is recorded but not folded in, else nothing."""
    norm = metadata.get(NORM_KEY)
    if not norm or norm.get("folded", True):
        return lambda x: np.ascontiguousarray(x, dtype=np.float32)
    mean = np.asarray(norm["mean"], dtype=np.float32).reshape(1, -1, 1)
    std = np.asarray(norm["std"], dtype=np.float32).reshape(1, -1, 1)
    return lambda x: np.ascontiguousarray((x - mean) / std, dtype=np.float32)


@dataclass
class ExportCheck:
    """PyTorch vs onnxruntime on the same raw windows."""

    windows: int
    max_abs_diff: float
    argmax_agreement: float
    tolerance: float = MAX_ABS_DIFF
    min_agreement: float = MIN_AGREEMENT

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.tolerance and self.argmax_agreement >= self.min_agreement

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def onnx_logits(path: str | Path, windows: np.ndarray, batch: int = 512) -> np.ndarray:
    """Logits of an exported file on raw windows [N, C, T] (its input transform applied)."""
    from harkd.deploy.latency import make_session

    session = make_session(path)
    prepare = input_transform(read_metadata(onnx.load(str(path), load_external_data=False)))
    out = [
        session.run([OUTPUT_NAME], {INPUT_NAME: prepare(windows[i : i + batch])})[0]
        for i in range(0, len(windows), batch)
    ]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


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
    got = onnx_logits(path, windows)
    return ExportCheck(
        windows=len(windows),
        max_abs_diff=float(np.abs(ref - got).max()),
        argmax_agreement=float((ref.argmax(1) == got.argmax(1)).mean()),
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


def run_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """The deployment facts of a run's model sidecar, as written into the ONNX metadata."""
    keys = ("model", "params", "in_channels", "num_classes", "window", "view",
            "channel_indices", "label_names")
    missing = [k for k in keys if k not in meta]
    if missing:
        raise KeyError(f"model.json lacks {missing}; it has {sorted(meta)}")
    return {f"harkd.{k}": meta[k] for k in keys}


def run_normalization(meta: dict[str, Any]) -> Normalization | None:
    """(mean, std) of the run's view from its sidecar, or None when it was trained raw."""
    norm = meta.get("norm")
    return None if not norm else (norm["mean"], norm["std"])


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

    run_dir = Path(run_dir)
    model, meta = load_run_model(run_dir)
    norm = run_normalization(meta)
    path = export_onnx(
        model, run_dir / "model.onnx", meta["in_channels"], meta["window"], run_metadata(meta), norm
    )
    ws = load_data_for_run(run_dir, data_cfg)
    x = ws.X[:, meta["channel_indices"]]
    test, train = ws.mask("test"), ws.mask("train")
    result = ExportResult(path, check_export(model, path, x[test], norm))
    if int8:
        from harkd.deploy.quantize import calibration_windows, compare_int8, quantize_onnx

        result.int8_path = quantize_onnx(
            path, run_dir / "model.int8.onnx", calibration_windows(x[train], calibration),
            int8_format, per_channel=per_channel,
        )
        result.int8 = compare_int8(
            path, result.int8_path, x[test], ws.y[test], meta["num_classes"]
        ).to_dict()
    (run_dir / "export.json").write_text(json.dumps(result.to_dict(), indent=1))
    if not result.check.passed:
        raise RuntimeError(
            f"{path}: ONNX differs from PyTorch on {result.check.windows} test windows: "
            f"max |logit diff| {result.check.max_abs_diff:.2e} (allowed {MAX_ABS_DIFF:.0e}), "
            f"argmax agreement {result.check.argmax_agreement:.4f} (needed {MIN_AGREEMENT})"
        )
    return result
