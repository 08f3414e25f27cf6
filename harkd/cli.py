"""The `harkd` command: `harkd prep|train|distill|evaluate|augment|grid|report|export|bench|demo`.

Each subcommand lives in its own module under `harkd.commands` with two functions,
`add_arguments(parser)` and `run(args) -> int`; modules are imported only when their command
runs, so `harkd prep` never pays for torch or onnxruntime start-up it does not need.

Commands raise; this dispatcher is the one place an error becomes a line on stderr and an exit
status (`EXIT_CODES`, printed by `harkd --help`). `--debug` adds the traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import pickle
import sqlite3
import sys
import textwrap
import traceback
from typing import NoReturn

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

#: exit status -> what it means (documented in `harkd --help` and the README)
EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "failed: the data cannot be used, or a run, a check or a grid run failed",
    2: "usage: a bad option, config or override, or a model that does not fit the data",
    3: "environment: a file or folder is missing, not readable or not writable (permission, "
    "read-only, a file where a folder is expected), the disk is full, or a required package or "
    "program is missing",
    4: "internal error: a bug in harkd (rerun with --debug and report the traceback)",
    130: "interrupted (Ctrl-C)",
}
EXIT_DATA, EXIT_USAGE, EXIT_FILES, EXIT_INTERNAL, EXIT_INTERRUPTED = 1, 2, 3, 4, 130

#: what the user can do about an OS error, by errno
_OS_HINTS: dict[int, str] = {
    errno.ENOENT: "not found",
    errno.EACCES: "permission denied (it must be readable, and its folder writable, by you)",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system (write the output elsewhere)",
    errno.ENOSPC: "no space left on device (free some space or write elsewhere)",
    errno.EDQUOT: "disk quota exceeded (free some space or write elsewhere)",
    errno.ENOTDIR: "a file stands where a folder is expected",
    errno.EISDIR: "a folder stands where a file is expected",
    errno.EEXIST: "already exists as a file, where a folder is expected",
}


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _epilog() -> str:
    rows = "\n".join(
        textwrap.fill(text, 94, initial_indent=f"  {code:<4d} ", subsequent_indent=" " * 7)
        for code, text in EXIT_CODES.items()
    )
    return (
        f"exit status:\n{rows}\n\nErrors are one line naming the file or field; "
        "--debug (before or after the command) also prints the traceback."
    )


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="harkd",
        description=__doc__.splitlines()[0],
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    debug = {"action": "store_true", "default": argparse.SUPPRESS,
             "help": "print the traceback of an error"}  # fmt: skip
    parser.add_argument("--debug", **debug)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--debug", **debug)
        if name == command:  # only the chosen command's module is imported
            importlib.import_module(f"harkd.commands.{module}").add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; its errors become one line on stderr and an `EXIT_CODES` status."""
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    command = command if command in COMMANDS else None
    debug = "--debug" in argv
    prog = f"harkd {command}" if command else "harkd"
    try:
        args = build_parser(command).parse_args(argv)
        if args.command is None:
            build_parser().print_help()
            return EXIT_USAGE
        module = importlib.import_module(f"harkd.commands.{COMMANDS[args.command][0]}")
        return int(module.run(args) or 0)
    except SystemExit as stop:  # argparse: --help (0) or a usage error already printed (2)
        return EXIT_USAGE if isinstance(stop.code, str) else int(stop.code or 0)
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 - the one place errors become an exit status
        code = exit_code(err)
        if debug:
            traceback.print_exc()
        line = error_line(err)
        if code == EXIT_INTERNAL:
            line = (f"internal error {type(err).__name__}: {line} (rerun with --debug for the "
                    "traceback and report it)")
        print(f"{prog}: {line}", file=sys.stderr)
        return code


def exit_code(err: BaseException) -> int:
    """The `EXIT_CODES` status of an error a command raised."""
    from harkd.config import ConfigError

    if isinstance(err, ConfigError):
        return EXIT_USAGE
    if isinstance(err, OSError | sqlite3.OperationalError):
        return EXIT_FILES
    if isinstance(err, ValueError | LookupError | ArithmeticError | RuntimeError
                  | pickle.UnpicklingError | sqlite3.DatabaseError):  # fmt: skip
        return EXIT_DATA
    return EXIT_INTERNAL


def error_line(err: BaseException) -> str:
    """The error's message in one line (a message of several lines, such as one problem per
    config key, joined); an OS error as `PATH: what is wrong (what to do)`."""
    if isinstance(err, OSError) and err.strerror:
        what = _OS_HINTS.get(err.errno or 0, err.strerror)
        paths = [str(p) for p in (err.filename, err.filename2) if p is not None]
        return f"{' -> '.join(paths)}: {what}" if paths else what
    text = str(err.args[0]) if len(err.args) == 1 else str(err)
    first, *more = [line.strip() for line in text.splitlines() if line.strip()] or [""]
    return (f"{first}: {'; '.join(more)}" if more else first) or type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
