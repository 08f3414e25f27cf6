"""The `harkd` command: `harkd prep|train|distill|evaluate|augment|grid|report|export|bench|demo`.

Each subcommand lives in its own module under `harkd.commands` with two functions,
`add_arguments(parser)` and `run(args) -> int`; modules are imported only when their command
runs, so `harkd prep` never pays for torch or onnxruntime start-up it does not need.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: command -> (module under harkd.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "prep": ("prep", "read recordings and build a cached, subject-split WindowSet"),
    "train": ("train", "train one model (teacher, student or peer) from a run config"),
    "distill": ("distill", "distil teachers into a student from a run config (--list: methods)"),
    "evaluate": ("evaluate", "evaluate a finished run on a data protocol"),
    "augment": ("augment", "list augmentation policies or plot one on real windows"),
    "grid": ("grid", "run an ablation grid (resumable, local or Ray)"),
    "report": ("report", "write the report of a finished grid"),
    "export": ("export", "export a run's model to ONNX (and int8)"),
    "bench": ("bench", "time ONNX models on onnxruntime's CPU provider"),
    "demo": ("demo", "the quickstart: prepare, train, distil, export and benchmark on UCI HAPT"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harkd", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:  # only the chosen command's module is imported
            importlib.import_module(f"harkd.commands.{module}").add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv and argv[0] in COMMANDS else None
    args = build_parser(command).parse_args(argv)
    if args.command is None:
        build_parser().print_help()
        return 2
    module = importlib.import_module(f"harkd.commands.{COMMANDS[args.command][0]}")
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
