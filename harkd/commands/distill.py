"""`harkd distill CONFIG [key=value ...]`: distil frozen teachers into a student.

The config is a run config (`harkd.config.RunConfig`) whose `distill.method` names a registered
method and whose `teachers.<name>.run_dir` point at finished `harkd train` runs. It runs the same
code as `harkd train` (`harkd.commands.train.train_command`): a missing teacher run is reported
with the `harkd train` command that creates it, and the run directory has the same layout.
`harkd distill --list` prints every method, its teachers and its parameters with their defaults.
"""

from __future__ import annotations

import argparse
import typing
from typing import Any

from pydantic_core import PydanticUndefined

from harkd.commands.train import add_arguments as add_train_arguments
from harkd.commands.train import train_command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_train_arguments(parser, example="configs/distill/kd.yaml")
    parser.add_argument(
        "--list", action="store_true", help="list the methods and their parameters"
    )


def run(args: argparse.Namespace) -> int:
    if args.list:
        from harkd.distill.base import distiller_classes

        print(format_methods(distiller_classes()))
        return 0
    return train_command(args, "distill")


def format_methods(methods: dict[str, Any]) -> str:
    """One block per method: name, teachers and description, then one line per parameter."""
    lines = []
    for name, cls in methods.items():
        low, high = cls.teacher_count
        if high == 0 or (low == 0 and high is None):
            teachers = "no teachers" if high == 0 else "teachers unused"
        else:
            teachers = f"{low}{'+' if high is None else f'-{high}'} teacher(s)"
        lines.append(f"{name:6s} {cls.description()}  [{teachers}]")
        fields = cls.params_model.model_fields
        if not fields:
            lines.append("    (no parameters)")
        for key, f in fields.items():
            if f.default is not PydanticUndefined:
                default = repr(f.default)
            elif f.default_factory is not None:
                default = repr(f.default_factory())
            else:
                default = "required"
            about = f"  {f.description}" if f.description else ""
            lines.append(f"    {key}: {_type_name(f.annotation)} = {default}{about}")
    return "\n".join(lines)


def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) is None and isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("harkd.config.", "")
