"""Streaming inference as a watch app runs it: one decision per hop over a whole recording.

For each decision the app takes the latest `window` samples of the view's channels, lays
them out [1, C, T], normalises them when the file does not fold the normalisation in, runs the
onnxruntime session and takes the argmax. Each decision is timed end to end (slicing and
normalisation included). The real-time factor is compute time over recording time (below 1:
faster than real time).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from harkd.deploy.latency import LatencyStats
from harkd.deploy.onnx_io import OUTPUT_NAME, input_transform, read_metadata
from harkd.deploy.session import InputShapeError, make_session, resolve_shape


def expected_decisions(n_samples: int, window: int, hop: int) -> int:
    """Decisions a stream of `n_samples` gives: one per hop once a full window is in."""
    return 0 if n_samples < window else (n_samples - window) // hop + 1


@dataclass
class StreamResult:
    """Per-decision latency, real-time factor and the decisions themselves."""

    decisions: int
    hop: int
    window: int
    rate_hz: float
    recording_s: float
    compute_s: float
    real_time_factor: float
    latency: LatencyStats
    starts: np.ndarray
    predictions: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {
            "decisions": self.decisions,
            "hop_samples": self.hop,
            "window_samples": self.window,
            "rate_hz": self.rate_hz,
            "recording_s": self.recording_s,
            "compute_s": self.compute_s,
            "real_time_factor": self.real_time_factor,
            "latency": self.latency.to_dict(),
        }


def stream(
    path: str | Path,
    signals: np.ndarray,
    rate_hz: float,
    hop_s: float = 1.0,
    channels: list[int] | None = None,
    threads: int = 1,
) -> StreamResult:
    """Slide the model of `path` over `signals` [T, C_all] at a hop of `hop_s` seconds.

    `channels` picks the model's channels from the recording (default: the file's
    `harkd.channel_indices` metadata, else every channel); a recording whose selected channel
    count or length does not fit the model raises `InputShapeError`.
    """
    proto = onnx.load(str(path))
    meta = read_metadata(proto)
    session = make_session(proto.SerializeToString(), threads=threads)
    if channels is None:
        channels = meta.get("harkd.channel_indices") or list(range(signals.shape[1]))
    if max(channels) >= signals.shape[1]:
        raise InputShapeError(
            f"{path}: the model reads recording channels {channels}, the recording has "
            f"{signals.shape[1]} channels"
        )
    _, window = resolve_shape(session, (len(channels), meta.get("harkd.window")), source=str(path))
    hop = max(1, int(round(hop_s * rate_hz)))
    prepare = input_transform(meta)
    name = session.get_inputs()[0].name
    view = np.ascontiguousarray(signals[:, channels], dtype=np.float32)
    starts = np.arange(expected_decisions(len(view), window, hop)) * hop
    if len(starts) == 0:
        raise InputShapeError(
            f"{path}: the recording has {len(view)} samples, fewer than one window ({window})"
        )
    preds = np.empty(len(starts), dtype=np.int64)
    samples = np.empty(len(starts), dtype=np.int64)
    clock = time.perf_counter_ns
    for i, start in enumerate(starts):
        t0 = clock()
        x = prepare(view[start : start + window].T[None])
        preds[i] = session.run([OUTPUT_NAME], {name: x})[0].argmax()
        samples[i] = clock() - t0
    compute_s = float(samples.sum()) / 1e9
    recording_s = len(view) / rate_hz
    return StreamResult(
        decisions=len(starts),
        hop=hop,
        window=window,
        rate_hz=rate_hz,
        recording_s=recording_s,
        compute_s=compute_s,
        real_time_factor=compute_s / recording_s,
        latency=LatencyStats.from_ns(samples),
        starts=starts,
        predictions=preds,
    )


def test_recording(data_cfg: Any, index: int = 0) -> tuple[np.ndarray, float, str]:
    """Signals [T, C], rate and a description of one whole test-split recording of a data
    protocol (a `DataConfig`), preprocessed exactly as its windows are (resampled, filtered)."""
    from data_prep.pipeline import load_recordings, prepare, resolve_source

    subjects = prepare(data_cfg, progress=False).meta["split_subjects"]["test"]
    cfg = data_cfg.model_copy(update={"subjects": list(subjects)})
    recordings, _ = load_recordings(cfg, resolve_source(cfg))
    if index >= len(recordings):
        raise IndexError(f"test recording {index} requested, the test split has {len(recordings)}")
    rec = recordings[index]
    return rec.signals, float(rec.rate_hz), f"{rec.source} (subject {rec.subject}, {rec.session})"
