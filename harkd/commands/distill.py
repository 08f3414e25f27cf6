"""`harkd distill CONFIG [key=value ...]`: distil frozen teachers into a student.

The config is a run config (`harkd.config.RunConfig`) whose `distill.method` names a registered
method and whose `teachers.<name>.run_dir` point at finished `harkd train` runs. A missing teacher
run is reported with the `harkd train` command that creates it. Training goes through
`harkd.train.loop.fit`, so the run directory has the same layout as one of `harkd train`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from harkd.config import ConfigError, RunConfig, TeacherConfig, load_run_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="run config YAML (e.g. configs/distill/kd.yaml)")
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.epochs=5"
    )
    parser.add_argument("--run-dir", default=None, help="run directory (default: chosen by fit)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def teacher_overrides(teacher: TeacherConfig, run_dir: str | Path) -> list[str]:
    """Overrides that turn a distillation config into the training config of `teacher`."""
    run_dir = Path(run_dir)
    out = [
        f"model.name={teacher.name}",
        f"model.view=[{','.join(teacher.view)}]",
        "teachers={}",
        "distill.method=none",
        "distill.params={}",
        f"name={run_dir.name}",
        f"output_dir={run_dir.parent}",
    ]
    if teacher.params:
        out.append(f"model.params={json.dumps(teacher.params, separators=(',', ':'))}")
    return out


def teacher_train_command(config: str, teacher: TeacherConfig) -> str:
    """A `harkd train` command that trains `teacher` on the same data into its `run_dir`."""
    args = ["harkd", "train", config, *teacher_overrides(teacher, str(teacher.run_dir))]
    return " ".join(shlex.quote(a) for a in args)


def missing_teachers(cfg: RunConfig, config: str) -> list[str]:
    """One message per teacher whose run directory is not given or does not exist."""
    problems = []
    for name, teacher in cfg.teachers.items():
        if teacher.run_dir is None:
            problems.append(
                f"teachers.{name}.run_dir is not set: name the `harkd train` run to use"
            )
        elif not (Path(teacher.run_dir) / "metrics.json").is_file():
            state = "is not a finished run" if Path(teacher.run_dir).is_dir() else "not found"
            problems.append(
                f"teachers.{name}.run_dir: run directory {teacher.run_dir!r} {state} "
                f"(no metrics.json). Train the teacher first:\n"
                f"  {teacher_train_command(config, teacher)}"
            )
    return problems


def run(args: argparse.Namespace) -> int:
    try:
        cfg = load_run_config(args.config, args.overrides)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    problems = missing_teachers(cfg, args.config)
    if problems:
        print(f"{args.config}: cannot distil yet", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 2
    from harkd.train.loop import fit  # torch is imported only once the config is known good

    result = fit(cfg, run_dir=args.run_dir, progress=not args.no_progress)
    print(result.summary() if hasattr(result, "summary") else result)
    return 0
