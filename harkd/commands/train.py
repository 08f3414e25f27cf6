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
import shlex
import sys
from pathlib import Path

from harkd.commands.options import DEFAULT_THREADS, add_threads_option
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
    add_threads_option(parser, " (without --threads: the config's train.threads when set)")


def run(args: argparse.Namespace) -> int:
    return train_command(args, "train")


def train_command(args: argparse.Namespace, command: str) -> int:
    """Load the config, check its teacher runs and its method, `fit` it, print the summary.

    Missing teacher runs are listed one a line with the command that trains each (exit status
    2); other errors go to `harkd.cli`, which maps them to a line and an exit status.
    """
    if args.config is None:
        raise ConfigError("give a run config YAML")
    cfg = load_run_config(config_file(args.config), args.overrides)
    threads = training_threads(args.threads, cfg)
    problems = missing_teachers(cfg, args.config)
    if problems:
        print(f"harkd {command}: {args.config}: cannot train yet", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 2
    import torch

    from harkd.train.compat import check_runnable
    from harkd.train.loop import fit

    check_runnable([cfg])
    torch.set_num_threads(threads)
    result = fit(
        cfg, run_dir=args.run_dir, progress=not args.no_progress, cache_dir=args.cache_dir
    )
    print(result.summary())
    return 0


def training_threads(threads: int | None, cfg: RunConfig) -> int:
    """`--threads`, else the config's `train.threads`, else DEFAULT_THREADS. Both given and
    different is a ConfigError: the config's value is part of the run's settings."""
    configured = cfg.train.threads
    if threads is not None and configured is not None and threads != configured:
        raise ConfigError(f"--threads {threads}: the config sets train.threads={configured}; "
                          f"override that instead (train.threads={threads})")
    return threads or configured or DEFAULT_THREADS


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
