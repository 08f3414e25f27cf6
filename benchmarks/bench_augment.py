"""Speed of harkd's batched augmenters against tsaug, and of a full policy against a training step.

On a [256, 3, 128] batch of real hapt-quick accelerometer windows (standardised with the
training statistics), for every operation both libraries offer, the two are timed alternately
in one run (harkd on torch [B, C, T], tsaug on numpy [N, T, C], its native layout, so neither
pays a conversion) and the medians compared. Then the policy
`rotation+timewarp+jitter+scaling` is timed against one training step (forward, cross-entropy,
backward, AdamW step) of the default tiny student on the same batch.

Threading and clock: torch.set_num_threads(1) and OMP/MKL/OpenBLAS limited to one thread
before numpy is imported, so both sides run single-threaded on the calling thread; each call is
timed with that thread's CPU clock (time.thread_time), so other processes on a shared machine
do not inflate either side. On an idle machine this equals the wall time.

Allocator: by default glibc's malloc is told (mallopt) to keep freed memory instead of
returning it to the system after every call (mmap threshold 32 MiB, trim threshold 256 MiB).
Without this, every 400 kB batch-sized array of either library is page-faulted afresh at each
call, which on a virtual machine costs more than the arithmetic and makes the timings depend
on the order of the measurements. `--default-malloc` keeps glibc's defaults; the JSON says
which was used.

Where the paired operations differ (each side does its own documented operation; neither is
asked to do less): noise, pool, reverse and convolve compute the same thing (pool and convolve
match tsaug to rounding in tests/augment). quantize: both snap each channel to n levels
between its min and max; harkd floors into n equal bins, tsaug rounds (its end bins are half
as wide). drift: the same model (a cubic spline through a Gaussian random walk, shifted to
start at 0, scaled to max_drift times each channel's value range), harkd's spline natural
through 4 knots, tsaug's not-a-knot through 6 anchors. time-warp: harkd resamples along a
smooth spline log-speed curve, tsaug along piecewise-constant speed changes. magwarp: harkd
multiplies by exp(spline), tsaug's multiplicative drift by 1 + a spline random walk scaled to
at most 0.2. crop/slice: harkd keeps a random 90% (115.2 steps, fractional start) and resizes
linearly, tsaug crops 115 whole steps and resizes. dropout: harkd's "ffill" holds the last
kept value through a run of consecutive dropped steps (a true forward fill); tsaug copies the
preceding step as it was before the drops, so inside a run a dropped value can be copied.

    python benchmarks/bench_augment.py [--repeats 100] [--default-malloc]

Targets: harkd >= 10x faster than tsaug for time-warp, >= 5x for the others; the policy
<= 10% of a training step.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import ctypes  # noqa: E402
import ctypes.util  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import tsaug  # noqa: E402
from tqdm import tqdm  # noqa: E402

from data_prep.config import load_data_config  # noqa: E402
from data_prep.pipeline import prepare  # noqa: E402
from harkd.augment import build_policy, noise_scale, resolution, segments, warps  # noqa: E402
from harkd.models import build_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BATCH, WINDOW = 256, 128
POLICY = "rotation+timewarp+jitter+scaling"

#: operation -> (harkd op, tsaug augmenter, speed-up target)
PAIRS: dict[str, tuple[Callable, Callable, float]] = {
    "noise": (
        lambda: noise_scale.Jitter(sigma=0.05),
        lambda: tsaug.AddNoise(scale=0.05, normalize=False, seed=0),
        5.0,
    ),
    "timewarp": (
        lambda: warps.TimeWarp(sigma=0.2, n_knots=4),
        lambda: tsaug.TimeWarp(n_speed_change=3, max_speed_ratio=2.0, seed=0),
        10.0,
    ),
    "drift": (
        lambda: warps.Drift(max_drift=0.1, n_knots=4),
        lambda: tsaug.Drift(max_drift=0.1, n_drift_points=4, seed=0),
        5.0,
    ),
    "magwarp": (
        lambda: warps.MagnitudeWarp(sigma=0.2, n_knots=4),
        lambda: tsaug.Drift(max_drift=0.2, n_drift_points=4, kind="multiplicative", seed=0),
        5.0,
    ),
    "dropout": (
        lambda: segments.TimeDropout(rate=0.05, size=1),
        lambda: tsaug.Dropout(p=0.05, size=1, fill="ffill", seed=0),
        5.0,
    ),
    "crop_slice": (
        lambda: warps.WindowSlice(ratio=0.9),
        lambda: tsaug.Crop(size=115, resize=WINDOW, seed=0),
        5.0,
    ),
    "pool": (
        lambda: resolution.Pool(size=2),
        lambda: tsaug.Pool(size=2, seed=0),
        5.0,
    ),
    "quantize": (
        lambda: resolution.Quantize(n_levels=10),
        lambda: tsaug.Quantize(n_levels=10, seed=0),
        5.0,
    ),
    "reverse": (
        lambda: segments.Reverse(p=1.0),
        lambda: tsaug.Reverse(seed=0),
        5.0,
    ),
    "convolve": (
        lambda: resolution.Convolve(window="hann", size=7),
        lambda: tsaug.Convolve(window="hann", size=7, seed=0),
        5.0,
    ),
}


def timed(fn: Callable[[], object]) -> float:
    """CPU seconds of this thread spent in `fn` (see the module doc)."""
    start = time.thread_time()
    fn()
    return time.thread_time() - start


def alternate(
    a: Callable[[], object], b: Callable[[], object], repeats: int
) -> tuple[float, float]:
    """Median seconds of `a` and `b`, timed in alternation after one warm-up call each."""
    a(), b()
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(timed(a))
        tb.append(timed(b))
    return statistics.median(ta), statistics.median(tb)


def keep_freed_memory() -> str:
    """Ask glibc malloc to keep freed memory (see the module doc); describe what was done."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is None or not hasattr(libc, "mallopt"):
        return "system default (mallopt unavailable)"
    m_trim_threshold, m_mmap_threshold = -1, -3
    ok = libc.mallopt(m_mmap_threshold, 32 * 2**20) and libc.mallopt(m_trim_threshold, 256 * 2**20)
    return (
        "glibc mallopt: mmap threshold 32 MiB, trim threshold 256 MiB" if ok else "mallopt failed"
    )


def real_batch() -> tuple[torch.Tensor, torch.Tensor, dict]:
    """[256, 3, 128] standardised hapt-quick training accelerometer windows, labels, norm."""
    ws = prepare(load_data_config(REPO / "configs" / "data" / "hapt-quick.yaml"), progress=False)
    acc = ws.groups["acc"]
    train = ws.subset("train")
    rng = np.random.default_rng(0)
    pick = rng.choice(len(train), size=BATCH, replace=False)
    mean = np.asarray(ws.meta["norm"]["mean"], dtype=np.float32)[acc]
    std = np.asarray(ws.meta["norm"]["std"], dtype=np.float32)[acc]
    x = (train.X[pick][:, acc] - mean[:, None]) / std[:, None]
    y = torch.from_numpy(train.y[pick])
    return torch.from_numpy(np.ascontiguousarray(x)), y, {"mean": mean, "std": std}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "augment.json"
    )
    parser.add_argument(
        "--default-malloc", action="store_true", help="keep glibc's malloc defaults"
    )
    args = parser.parse_args()
    allocator = "glibc defaults" if args.default_malloc else keep_freed_memory()
    torch.set_num_threads(1)

    x, y, norm = real_batch()
    num_classes = 6
    y_soft = torch.nn.functional.one_hot(y, num_classes).float()
    x_np = np.ascontiguousarray(x.numpy().transpose(0, 2, 1)).astype(np.float64)
    g = torch.Generator().manual_seed(0)

    ops = {}
    for name, (make_harkd, make_tsaug, target) in tqdm(PAIRS.items(), desc="ops"):
        ours, theirs = make_harkd(), make_tsaug()
        t_h, t_t = alternate(
            lambda o=ours: o(x, y_soft, g), lambda t=theirs: t.augment(x_np), args.repeats
        )
        ops[name] = {
            "harkd_ms": t_h * 1e3,
            "tsaug_ms": t_t * 1e3,
            "speedup": t_t / t_h,
            "target": target,
            "met": t_t / t_h >= target,
        }

    policy = build_policy(POLICY, {"acc": [0, 1, 2]}, norm=norm)
    model = build_model("tiny", in_channels=3, num_classes=num_classes, window=WINDOW)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x).logits, y)
        loss.backward()
        opt.step()

    t_policy, t_step = alternate(lambda: policy(x, y_soft, g), step, args.repeats)
    result = {
        "batch": [BATCH, 3, WINDOW],
        "data": "hapt-quick training accelerometer windows, standardised",
        "threads": "torch.set_num_threads(1); OMP/MKL/OpenBLAS 1 thread",
        "clock": "time.thread_time (CPU time of the single working thread), median",
        "allocator": allocator,
        "repeats": args.repeats,
        "tsaug_version": tsaug.__version__,
        "torch_version": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "ops": ops,
        "policy": {
            "name": POLICY,
            "policy_ms": t_policy * 1e3,
            "train_step_ms": t_step * 1e3,
            "model": "tiny",
            "fraction_of_step": t_policy / t_step,
            "target": 0.10,
            "met": t_policy / t_step <= 0.10,
        },
    }
    print(f"{'op':12s} {'harkd ms':>9s} {'tsaug ms':>9s} {'speed-up':>9s} {'target':>7s}")
    for name, r in ops.items():
        mark = "ok" if r["met"] else "MISSED"
        print(
            f"{name:12s} {r['harkd_ms']:9.3f} {r['tsaug_ms']:9.3f} {r['speedup']:8.1f}x "
            f"{r['target']:6.0f}x {mark}"
        )
    p = result["policy"]
    print(
        f"policy {POLICY}: {p['policy_ms']:.3f} ms = {100 * p['fraction_of_step']:.1f}% of a "
        f"training step of the tiny student ({p['train_step_ms']:.3f} ms); target <= 10%"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
