"""tsaug's augmenters behind the harkd interface, registered as `tsaug_<name>`.

tsaug (Arundo Analytics, https://github.com/arundo/tsaug; catalogued in Wen et al., IJCAI 2021,
arXiv 2002.12478) works on numpy [N, T, C] on the CPU. Each call converts the batch, seeds the
tsaug augmenter with an integer drawn from the torch generator (so results are reproducible
from the generator alone), and converts back to x's device and dtype. Parameters are tsaug's
own keyword arguments (except `repeats`, `prob` and `seed`; tsaug Dropout's `p` is called
`p_drop` here); the per-sample probability `p` is
applied by harkd as for every op. tsaug's Crop and Resize change the series length; their
output is resized back to T (linear, tsaug's Resize), so `tsaug_crop` is a window slice and
`tsaug_resize` a down- and up-sampling round trip. These ops run a Python loop in numpy and
are much slower than the batched ops (benchmarks/bench_augment.py).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import torch
from torch import Tensor

from harkd.augment.base import Augmenter, register_op

#: harkd op name -> tsaug class name
TSAUG_CLASSES = {
    "tsaug_addnoise": "AddNoise",
    "tsaug_convolve": "Convolve",
    "tsaug_crop": "Crop",
    "tsaug_drift": "Drift",
    "tsaug_dropout": "Dropout",
    "tsaug_pool": "Pool",
    "tsaug_quantize": "Quantize",
    "tsaug_resize": "Resize",
    "tsaug_reverse": "Reverse",
    "tsaug_timewarp": "TimeWarp",
}
_HANDLED = {"self", "repeats", "prob", "seed"}
#: tsaug parameter names that clash with harkd's `p` -> the name harkd uses for them
_RENAMED = {"p": "p_drop"}


def _tsaug_class(name: str) -> type:
    return getattr(importlib.import_module("tsaug"), name)


class TsaugOp(Augmenter):
    """Base of the wrappers; subclasses only set `name` and `tsaug_name`."""

    tsaug_name: str = ""

    def __init__(self, p: float = 1.0, **params: Any) -> None:
        super().__init__(p)
        type(self).spec(params)
        self.params = dict(params)
        inverse = {v: k for k, v in _RENAMED.items()}
        self._augmenter = _tsaug_class(self.tsaug_name)(
            **{inverse.get(k, k): v for k, v in params.items()}
        )

    @classmethod
    def _tsaug_params(cls) -> dict[str, inspect.Parameter]:
        """harkd name -> tsaug constructor parameter (those harkd does not handle itself)."""
        sig = inspect.signature(_tsaug_class(cls.tsaug_name).__init__).parameters
        return {_RENAMED.get(n, n): prm for n, prm in sig.items() if n not in _HANDLED}

    @classmethod
    def param_names(cls) -> list[str]:
        return ["p", *cls._tsaug_params()]

    @classmethod
    def spec(cls, params: dict[str, Any]) -> dict[str, Any]:
        allowed = cls.param_names()
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ValueError(f"op {cls.name!r}: unknown parameter(s) {unknown}; allowed: {allowed}")
        tsaug_params = cls._tsaug_params()
        required = [n for n, prm in tsaug_params.items() if prm.default is inspect.Parameter.empty]
        missing = sorted(set(required) - set(params))
        if missing:
            raise ValueError(f"op {cls.name!r}: missing required parameter(s) {missing}")
        defaults = {n: prm.default for n, prm in tsaug_params.items() if n not in required}
        return {"op": cls.name, "p": 1.0, **defaults, **params}

    def describe(self) -> dict[str, Any]:
        return type(self).spec({"p": self.p, **self.params})

    def transform(self, x: Tensor, g: torch.Generator) -> Tensor:
        T = x.shape[-1]
        self._augmenter.seed = int(torch.randint(2**31 - 1, (1,), generator=g, device=g.device))
        arr = x.detach().cpu().numpy().transpose(0, 2, 1)
        out = self._augmenter.augment(arr)
        if out.shape[1] != T:
            out = _tsaug_class("Resize")(size=T).augment(out)
        return torch.from_numpy(out.transpose(0, 2, 1).copy()).to(x.device, x.dtype)


for _op_name, _cls_name in TSAUG_CLASSES.items():
    register_op(
        type(
            f"Tsaug{_cls_name}",
            (TsaugOp,),
            {"name": _op_name, "tsaug_name": _cls_name, "__doc__": f"tsaug.{_cls_name}, wrapped."},
        )
    )
