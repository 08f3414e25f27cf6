"""`prepare`: a data protocol to a cached, subject-split `WindowSet`.

reader -> subject selection -> repair (NaN/inf gaps) -> validation (shapes, units, labels) ->
channel groups -> resample -> drop recordings shorter than a window -> filters -> split by
subject (with a label budget: labelled and hidden training subjects) -> windows (the test split
may use its own step) -> normalisation statistics from the labelled training windows. Everything
dropped is counted by reason in `meta["dropped"]`; repairs in `meta["repair"]`. With
`split.pool`, the training subjects' windows without a usable label (labels hidden by the budget,
null, other classes, impure) go to the unlabelled `pool` split instead of being dropped, counted
by the same reasons in `meta["pool"]`; validation and test windows never do. With `split.subset`
(one of several overlapping subsets of the training subjects) the normalisation statistics are
still those of every training subject, so the teachers of the subsets and a student on all of
them standardise windows alike; then `split.label_noise` relabels training windows (of every
training subject, so a window's noisy label is the same in every subset), and the windows of the
training subjects outside the subset are dropped and counted. The result is cached under a hash
of source + config (`data_prep.cache`).
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from data_prep.cache import cache_key, cache_stem, load_cached, resolve_cache_dir, save_cached
from data_prep.config import DataConfig
from data_prep.configio import ConfigError
from data_prep.filters import apply_filters
from data_prep.label_noise import add_label_noise
from data_prep.readers import get_reader
from data_prep.recording import Recording, RecordingError, label_values
from data_prep.repair import repair
from data_prep.resample import resample
from data_prep.splits import OUTSIDE_SUBSET, assign_splits
from data_prep.windowing import LabelledWindows, extract, label_windows, window_mean_std
from data_prep.windowset import POOL, SPLIT_INDEX, SPLITS, WindowSet

#: why a window of a training subject outside the label budget has no label (dropped, or pooled)
LABEL_BUDGET = "windows_label_budget"
#: every reason a training window can lack a label: the keys of `meta["pool"]`
POOL_REASONS = (LABEL_BUDGET, "windows_null", "windows_unselected_label", "windows_impure")
#: why a labelled window of a training subject outside `split.subset` is dropped
OUTSIDE_SUBSET_WINDOWS = "windows_outside_subject_subset"


def default_source(reader: str) -> Path:
    """The packaged data a reader falls back to when the config gives no `path`.

    For the generated `synth_skeleton` data it is the generator's module file, so that editing
    the generator gives a new cache key.
    """
    if reader == "hapt":
        from data_prep.readers.hapt_pickle import package_file

        return package_file()
    if reader == "synth_skeleton":  # generated data: the generator's code is its source
        from data_prep import synth_skeleton

        return Path(synth_skeleton.__file__)
    raise ConfigError(f"reader {reader!r} needs `path` (only `hapt` has packaged data)")


def resolve_source(cfg: DataConfig) -> Path:
    """The config's `path`, or the reader's packaged data."""
    return Path(cfg.path).expanduser() if cfg.path is not None else default_source(cfg.reader)


def prepare(cfg: DataConfig, cache_dir: Path | None = None, progress: bool = True) -> WindowSet:
    """Build (or load from the cache) the WindowSet of a data protocol.

    `meta["from_cache"]` says whether it was loaded, `meta["cache_path"]` where it lives.
    """
    source = resolve_source(cfg)
    stem = cache_stem(cfg, cache_key(cfg, source), resolve_cache_dir(cache_dir))
    cached = load_cached(stem)
    if cached is not None:
        cached.meta.update(from_cache=True, cache_path=str(stem))
        return cached
    recordings, report = load_recordings(cfg, source, progress)
    ws = build_windowset(recordings, cfg, report)
    del recordings  # a multi-day recording is not held while its windows are written
    ws.meta.update(config_hash=stem.name.rsplit("-", 1)[1], source=str(source))
    save_cached(ws, stem)
    ws.meta.update(from_cache=False, cache_path=str(stem))
    return ws


def read_source(
    cfg: DataConfig, source: Path
) -> tuple[list[Recording], dict[str, int], dict[str, dict[str, Any]]]:
    """Run the configured reader and keep the configured subjects.

    Returns the recordings, the reader's own repair/skip counts and its per-file details
    (readers returning a `ReadResult` report what they repaired, skipped or did to each file).
    """
    recordings = get_reader(cfg.reader)(source, **cfg.reader_options)
    reader_counts = dict(getattr(recordings, "counts", {}))
    reader_details = dict(getattr(recordings, "details", {}))
    if not recordings:
        raise RecordingError(f"{source}: reader {cfg.reader!r} found no recordings")
    if cfg.subjects is not None:
        present = {r.subject for r in recordings}
        missing = [s for s in cfg.subjects if s not in present]
        if missing:
            raise ConfigError(f"subjects {missing} are not in {source}; it has {sorted(present)}")
        recordings = [r for r in recordings if r.subject in cfg.subjects]
    return list(recordings), reader_counts, reader_details


def load_recordings(
    cfg: DataConfig, source: Path, progress: bool = False
) -> tuple[list[Recording], dict[str, Any]]:
    """Read, repair, validate, select groups, resample, drop short ones and filter.

    Returns the recordings and a report {"read": {...}, "repair": {...}, "dropped": {...}}.
    """
    recordings, reader_counts, reader_details = read_source(cfg, source)
    read = {
        "recordings": len(recordings),
        "subjects": len({r.subject for r in recordings}),
        "samples": sum(r.n_samples for r in recordings),
    }
    if reader_details:
        read["details"] = reader_details
    repairs: Counter = Counter()
    dropped: Counter = Counter()
    out = []
    for rec in tqdm(recordings, desc=f"prep {cfg.name}", unit="rec", disable=not progress):
        pieces, counts = repair(rec, cfg.max_gap_s)
        repairs.update(counts)
        for piece in pieces:
            piece = _select_groups(check_labels(piece.validate(), cfg), cfg.groups)
            rate = cfg.rate_hz or piece.rate_hz
            piece = resample(piece, rate, overwrite=True)  # the reader's signals are ours
            length = cfg.window.in_samples(rate)[0]
            if piece.n_samples < length:
                dropped["recordings_shorter_than_window"] += 1
                dropped["samples_in_short_recordings"] += piece.n_samples
                continue
            out.append(apply_filters(piece, cfg.filter))
    if not out:
        raise RecordingError(f"{source}: no recording is at least one window long")
    _check_consistent(out)
    repairs.update({f"reader_{k}": v for k, v in reader_counts.items()})
    return out, {"read": read, "repair": dict(repairs), "dropped": dict(dropped)}


def check_labels(rec: Recording, cfg: DataConfig) -> Recording:
    """Every label must be -1 or in the source's label map (the config's when it has none)."""
    known = set(rec.label_names) if rec.label_names else set(cfg.labels)
    present = set(label_values(rec.labels).tolist()) - {-1}
    outside = sorted(present - known)
    if outside:
        raise RecordingError(
            f"{rec.source} (subject {rec.subject}, session {rec.session}): labels {outside} "
            f"outside the label map {sorted(known)}"
        )
    unknown = sorted(set(cfg.labels) - known)
    if unknown:
        raise ConfigError(
            f"labels {unknown} are not labels of {rec.source}; it has {sorted(known)}"
        )
    return rec


def _select_groups(rec: Recording, groups: list[str]) -> Recording:
    missing = [g for g in groups if g not in rec.groups]
    if missing:
        raise ConfigError(f"groups {missing} not in {rec.source}; it has {sorted(rec.groups)}")
    idx = [i for g in groups for i in rec.groups[g]]
    new_groups, pos = {}, 0
    for g in groups:
        new_groups[g] = list(range(pos, pos + len(rec.groups[g])))
        pos += len(rec.groups[g])
    return dataclasses.replace(
        rec,
        # every channel in order (a device's acc): the signals as they are, no copy
        signals=np.ascontiguousarray(
            rec.signals if idx == list(range(len(rec.channels))) else rec.signals[:, idx]
        ),
        channels=[rec.channels[i] for i in idx],
        units=[rec.units[i] for i in idx],
        groups=new_groups,
    )


def _check_consistent(recordings: list[Recording]) -> None:
    first = recordings[0]
    for rec in recordings[1:]:
        if rec.channels != first.channels or rec.rate_hz != first.rate_hz:
            raise RecordingError(
                f"{rec.source}: channels {rec.channels} at {rec.rate_hz} Hz differ from "
                f"{first.source}: {first.channels} at {first.rate_hz} Hz; set rate_hz to resample"
            )


def build_windowset(
    recordings: list[Recording], cfg: DataConfig, report: dict[str, Any]
) -> WindowSet:
    """Split by subject, window every recording, and compute training statistics."""
    rate = recordings[0].rate_hz
    length, step, test_step = cfg.window.in_samples(rate)
    assigned = assign_splits((r.subject for r in recordings), cfg.split)
    role_of = {s: role for role, subs in assigned.items() for s in subs}
    class_of = {label: i for i, label in enumerate(cfg.labels)}
    null_index = len(cfg.labels) if cfg.null_class == "keep" else None
    dropped = Counter(report["dropped"])
    pooled = Counter(dict.fromkeys(POOL_REASONS, 0))
    pieces = []  # (recording index, starts, y, split index)
    for i, rec in enumerate(recordings):
        role = role_of[rec.subject]
        role = "train" if role == OUTSIDE_SUBSET else role  # dropped after the statistics
        win_step = test_step if role == "test" else step
        win = label_windows(rec.labels, length, win_step, cfg.purity, class_of, null_index)
        for starts, y, split in route_windows(win, role, cfg.split.pool, dropped, pooled):
            pieces.append((i, starts, y, split))
    # every window cut straight into its place in one array: no per-recording copy to join
    counts = [len(starts) for _, starts, _, _ in pieces]
    x = np.empty((sum(counts), recordings[0].signals.shape[1], length), dtype=np.float32)
    for (i, starts, _, _), at in zip(pieces, np.cumsum([0, *counts])[:-1], strict=True):
        extract(recordings[i].signals, starts, length, out=x[at : at + len(starts)])
    arrays = {
        "X": x,
        "y": _joined((y for _, _, y, _ in pieces), np.int64),
        "subject": _joined((np.full(len(s), recordings[i].subject) for i, s, _, _ in pieces), str),
        "recording": _joined((np.full(len(s), i, np.int64) for i, s, _, _ in pieces), np.int64),
        "start": _joined((s for _, s, _, _ in pieces), np.int64),
        "split": _joined((np.full(len(s), k, np.uint8) for _, s, _, k in pieces), np.uint8),
    }
    train_index = SPLIT_INDEX["train"]
    norm = train_norm(
        [(recordings[i].signals, s) for i, s, _, k in pieces if k == train_index], length
    )
    train = arrays["split"] == train_index
    noise = None
    if cfg.split.label_noise is not None:
        arrays["y"], noise = add_label_noise(arrays["y"], train, arrays["recording"],
                                             arrays["start"], len(cfg.class_names()),
                                             cfg.split.label_noise)
    if OUTSIDE_SUBSET in assigned:
        keep = ~np.isin(arrays["subject"], assigned[OUTSIDE_SUBSET])
        dropped[OUTSIDE_SUBSET_WINDOWS] += int((~keep).sum())
        arrays = {k: v[keep] for k, v in arrays.items()}
    split_subjects = {name: assigned[name] for name in SPLITS}
    if cfg.split.pool:
        split_subjects[POOL] = assigned.get("hidden", [])
    first = recordings[0]
    meta = {
        "name": cfg.name,
        "reader": cfg.reader,
        "channels": first.channels,
        "units": first.units,
        "groups": first.groups,
        "rate_hz": rate,
        "window": length,
        "step": step,
        "test_step": test_step,
        "purity": cfg.purity,
        "label_names": cfg.class_names(),
        "label_ids": list(cfg.labels),
        "null_class": cfg.null_class,
        "read": report["read"],
        "repair": report["repair"],
        "dropped": dict(sorted(dropped.items())),
        "split_subjects": split_subjects,
        "recordings": [
            {"subject": r.subject, "session": r.session, "source": r.source, "samples": r.n_samples}
            for r in recordings
        ],
        "norm": norm,
        "config": json.loads(cfg.model_dump_json()),  # as the cached JSON holds it
    }
    if cfg.split.label_budget is not None:
        meta["hidden_subjects"] = assigned["hidden"]
    if cfg.split.pool:
        meta["pool"] = dict(sorted(pooled.items()))
    if OUTSIDE_SUBSET in assigned:
        meta["outside_subset_subjects"] = assigned[OUTSIDE_SUBSET]
    if noise is not None:
        meta["label_noise"] = noise
    return WindowSet(**arrays, meta=meta)


def _joined(parts: Iterator[np.ndarray], dtype: Any) -> np.ndarray:
    """The parts end to end (an empty array of `dtype` when there are none)."""
    return np.concatenate([np.zeros(0, dtype), *parts])


def route_windows(
    win: LabelledWindows, role: str, pool: bool, dropped: Counter, pooled: Counter
) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Where one recording's windows go, as (starts, y, split index) pieces.

    `role` is the subject's part of the split ("train", "val", "test", or "hidden": a training
    subject outside the label budget). Labelled windows go to the subject's split, except a
    hidden subject's. Windows without a usable label (rejected by the windowing, or hidden by
    the budget) go to the pool with y = -1 when `pool` and the subject is a training subject,
    counted by reason in `pooled`; otherwise they are counted by reason in `dropped`.
    """
    pieces = []
    unlabelled = dict(win.rejected)
    if role == "hidden":
        unlabelled[LABEL_BUDGET] = win.starts
    else:
        pieces.append((win.starts, win.y, SPLIT_INDEX[role]))
    if pool and role in ("train", "hidden"):
        pooled.update({reason: len(v) for reason, v in unlabelled.items()})
        starts = np.sort(np.concatenate([np.zeros(0, np.int64), *unlabelled.values()]))
        pieces.append((starts, np.full(len(starts), -1, np.int64), SPLIT_INDEX[POOL]))
    else:
        dropped.update({reason: len(v) for reason, v in unlabelled.items() if len(v)})
    return pieces


def train_norm(pieces: list[tuple[np.ndarray, np.ndarray]], length: int) -> dict[str, list[float]]:
    """Per-channel mean and std over the training windows (std floored at 1e-6).

    `pieces` are the training (signals [T, C], window starts) of each recording: the figures of
    the windows [N, C, L] they give, computed from the signals (`window_mean_std`).
    """
    if not any(len(starts) for _, starts in pieces):
        raise RecordingError("the training split has no windows; cannot compute normalisation")
    mean, std = window_mean_std(pieces, length)
    return {"mean": mean.tolist(), "std": np.maximum(std, 1e-6).tolist()}
