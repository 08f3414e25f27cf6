"""`harkd prep CONFIG [key=value ...]`: build (or load) a data protocol's WindowSet and report it.

Prints what was read, the windows per split and class, what was repaired or dropped and why,
and the cache file and whether it was a hit. `harkd prep --list-readers` lists the readers
and every option each one takes (`reader_options` in a protocol); `harkd prep --describe
READER` adds what that reader reads, in full.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from data_prep.configio import ConfigError
from data_prep.readers import Reader
from data_prep.windowset import SPLITS, WindowSet
from harkd.shipped import config_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="data protocol YAML (configs/data/*.yaml)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. split.fold=3")
    parser.add_argument(
        "--list-readers", action="store_true", help="list the readers and their options"
    )
    parser.add_argument(
        "--describe", metavar="READER", help="what READER reads, and its options, in full"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="cache folder (default $HARKD_CACHE or .cache/harkd)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from data_prep.readers import get_reader, list_readers

    if args.list_readers:
        for reader in list_readers().values():
            print(f"{reader.name:15s} {reader.summary}")
            print("\n".join(f"{'':18s}{line}" for line in option_lines(reader)))
        return 0
    if args.describe is not None:
        try:
            reader = get_reader(args.describe)
        except KeyError as err:
            raise ConfigError(err.args[0]) from None
        print(describe_reader(reader))
        return 0
    if args.config is None:
        raise ConfigError("give a data protocol YAML, --list-readers or --describe READER")
    from data_prep.config import load_data_config
    from data_prep.pipeline import prepare

    cfg = load_data_config(config_file(args.config), args.overrides)
    ws = prepare(cfg, cache_dir=args.cache_dir, progress=not args.no_progress)
    print(summary(ws))
    return 0


def option_lines(reader: Reader) -> list[str]:
    """One line per option of the reader: `name (type, default ...): what it does`."""
    lines = [
        f"{o.name} ({o.type}, "
        + ("required" if o.default is None else f"default {o.default}")
        + f"): {o.description}"
        for o in reader.options.describe()
    ]
    return lines or ["(no options)"]


def describe_reader(reader: Reader) -> str:
    """What the reader reads (its module's docstring), then its options."""
    heading = "options (reader_options in a data protocol YAML):"
    return "\n".join([reader.doc, "", heading, *(f"  {line}" for line in option_lines(reader))])


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
    if "pool" in m:  # split.pool: the training windows without a usable label
        lines.insert(
            -1,
            f"pool      {int(ws.mask('pool').sum()):,} unlabelled windows (subjects with hidden "
            f"labels: {len(m['split_subjects']['pool'])}): " + _counts(m["pool"]),
        )
    if "outside_subset_subjects" in m:  # split.subset: training on some training subjects
        lines.insert(-1, f"subset    trains on {len(m['split_subjects']['train'])} of the "
                         f"training subjects; left out: {m['outside_subset_subjects']}")
    if "label_noise" in m:  # split.label_noise: training labels changed on purpose
        noise = m["label_noise"]
        lines.insert(-1, f"noise     {noise['relabelled']:,} of {noise['training_windows']:,} "
                         f"training labels changed ({noise['kind']}, rate {noise['rate']:g}, "
                         f"seed {noise['seed']})")
    lines[-1:-1] = _file_details(read.get("details", {}), f"{m['cache_path']}.json")
    untrained = np.flatnonzero(np.bincount(ws.y[ws.mask("train")], minlength=len(ws.label_names))
                               == 0)
    if untrained.size:  # harkd.train.compat.check_trainable refuses to train on it
        lines.insert(-1, f"WARNING   class(es) {[ws.label_names[k] for k in untrained]} have no "
                     "training windows: training on this protocol is refused")
    return "\n".join(lines)


def _file_details(details: dict[str, dict], meta_file: str, shown: int = 10) -> list[str]:
    """What the reader did to each file (`ReadResult.details`), the first `shown` files."""
    out = [
        f"{'files' if k == 0 else '':10s}{Path(source).name}: "
        + ", ".join(f"{key} {value}" for key, value in facts.items())
        for k, (source, facts) in enumerate(list(details.items())[:shown])
    ]
    if len(details) > shown:
        out.append(f"{'':10s}... {len(details) - shown} more in {meta_file} (read.details)")
    return out


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
