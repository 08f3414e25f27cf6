"""`harkd train CONFIG [key=value ...]`: train one model (teacher, student or peer).

The config is a run config (`harkd.config.RunConfig`, e.g. configs/train/*.yaml); training is
`harkd.train.loop.fit` with whatever method the config names (`none` by default: the model
alone). Rerunning a finished run reuses it; an interrupted one resumes from its checkpoint.
`harkd distill` is this same command (`train_command`) with a distillation config; both say
which teacher runs are missing and print the `harkd train` command that makes each.
"""

from __future__ import annotations

import argparse
import json
import pickle
import shlex
import sys
from pathlib import Path

from harkd.config import ConfigError, RunConfig, TeacherConfig, load_run_config
from harkd.shipped import config_file


def add_arguments(
    parser: argparse.ArgumentParser, example: str = "configs/train/teacher_cnn1d.yaml"
) -> None:
    parser.add_argument("config", nargs="?", help=f"run config YAML (e.g. {example})")
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.epochs=5"
    )
    parser.add_argument(
        "--run-dir", type=Path, default=None, help="run directory (default: OUTPUT_DIR/NAME)"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="WindowSet cache (default $HARKD_CACHE)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    return train_command(args, "train")


def train_command(args: argparse.Namespace, command: str) -> int:
    """Load the config, check its teacher runs and its method, `fit` it, print the summary.

    Exit status 2 for a config that cannot be used (one line, or one per missing teacher),
    1 for data or training that fails, 0 otherwise.
    """
    if args.config is None:
        print(f"harkd {command}: give a run config YAML", file=sys.stderr)
        return 2
    try:
        cfg = load_run_config(config_file(args.config), args.overrides)
        problems = missing_teachers(cfg, args.config)
        if problems:
            print(f"harkd {command}: {args.config}: cannot train yet", file=sys.stderr)
            for p in problems:
                print(f"  {p}", file=sys.stderr)
            return 2
        from harkd.train.assemble import check_method
        from harkd.train.loop import fit

        check_method(cfg)
        result = fit(
            cfg, run_dir=args.run_dir, progress=not args.no_progress, cache_dir=args.cache_dir
        )
    except ConfigError as err:
        print(f"harkd {command}: {err}", file=sys.stderr)
        return 2
    except (ValueError, OSError, KeyError, ArithmeticError, pickle.UnpicklingError) as err:
        print(f"harkd {command}: {err.args[0] if err.args else err}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0


def missing_teachers(cfg: RunConfig, config: str) -> list[str]:
    """One message per teacher whose run directory is not given or holds no run card."""
    from harkd.train.rundir import RunDir

    problems = []
    for name, teacher in cfg.teachers.items():
        if teacher.run_dir is None:
            problems.append(
                f"teachers.{name}.run_dir is not set: name the `harkd train` run to use"
            )
        elif not RunDir(Path(teacher.run_dir)).card.is_file():
            state = "is not a finished run" if Path(teacher.run_dir).is_dir() else "not found"
            problems.append(
                f"teachers.{name}.run_dir: run directory {teacher.run_dir!r} {state} "
                f"(no model.json). Train the teacher first:\n"
                f"  {teacher_train_command(config, teacher)}"
            )
    return problems


def teacher_train_command(config: str, teacher: TeacherConfig) -> str:
    """A `harkd train` command that trains `teacher` on the same data into its `run_dir`."""
    args = ["harkd", "train", config, *teacher_overrides(teacher, str(teacher.run_dir))]
    return " ".join(shlex.quote(a) for a in args)


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
