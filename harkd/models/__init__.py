"""Teachers, students and peer models; importing this package registers each one."""

import importlib
import pkgutil

from harkd.models.base import HARModel, LogitsOnly, ModelOutput, build_model, list_models

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name not in {"base", "blocks"}:
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["HARModel", "LogitsOnly", "ModelOutput", "build_model", "list_models"]
