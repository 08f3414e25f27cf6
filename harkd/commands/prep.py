"""`harkd prep CONFIG [key=value ...]`: build (or load) a data protocol's WindowSet and report it.

Prints what was read, the windows per split and class, what was repaired or dropped and why,
and the cache file and whether it was a hit. `harkd prep --list-readers` lists the readers.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np

from data_prep.windowset import SPLITS, WindowSet


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="data protocol YAML (configs/data/*.yaml)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. split.fold=3")
    parser.add_argument("--list-readers", action="store_true", help="list the registered readers")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="cache folder (default $HARKD_CACHE or .cache/harkd)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from data_prep.readers import list_readers

    if args.list_readers:
        for name, doc in list_readers().items():
            print(f"{name:15s} {doc}")
        return 0
    if args.config is None:
        print("harkd prep: give a data protocol YAML, or --list-readers", file=sys.stderr)
        return 2
    from data_prep.config import load_data_config
    from data_prep.pipeline import prepare

    try:
        cfg = load_data_config(args.config, args.overrides)
        ws = prepare(cfg, cache_dir=args.cache_dir, progress=not args.no_progress)
    except (ValueError, OSError, KeyError, pickle.UnpicklingError) as err:
        print(f"harkd prep: {err}", file=sys.stderr)
        return 1
    print(summary(ws))
    return 0


def summary(ws: WindowSet) -> str:
    """A human-readable account of a prepared WindowSet."""
    m = ws.meta
    read = m["read"]
    lines = [
        f"read      {m['reader']} from {m['source']}: {read['recordings']} recordings, "
        f"{read['subjects']} subjects, {read['samples']:,} samples",
        f"channels  {len(m['channels'])} at {m['rate_hz']:g} Hz: "
        + ", ".join(f"{g} {[m['channels'][i] for i in idx]}" for g, idx in m["groups"].items()),
        f"windows   {m['window']} samples, step {m['step']} (test {m['test_step']}), "
        f"purity >= {m['purity']:g}, null class {m['null_class']}",
        "",
        _class_table(ws),
        "",
        "repaired  " + _counts(m["repair"]),
        "dropped   " + _counts(m["dropped"]),
        f"cache     {m['cache_path']}.npz ({'hit' if m['from_cache'] else 'written'})",
    ]
    return "\n".join(lines)


def _class_table(ws: WindowSet) -> str:
    names = ws.label_names
    width = max(len(n) for n in [*names, "class"])
    header = f"{'class':{width}s} " + " ".join(f"{s:>7s}" for s in SPLITS)
    rows = [header]
    counts = {s: np.bincount(ws.y[ws.mask(s)], minlength=len(names)) for s in SPLITS}
    for k, name in enumerate(names):
        rows.append(f"{name:{width}s} " + " ".join(f"{counts[s][k]:7d}" for s in SPLITS))
    rows.append(f"{'total':{width}s} " + " ".join(f"{counts[s].sum():7d}" for s in SPLITS))
    subjects = ws.meta["split_subjects"]
    rows.append(f"{'subjects':{width}s} " + " ".join(f"{len(subjects[s]):7d}" for s in SPLITS))
    return "\n".join(rows)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v:,}" for k, v in counts.items()) if counts else "nothing"
