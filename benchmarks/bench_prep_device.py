"""Benchmark: a synthetic 7-day Axivity .cwa at 100 Hz through `harkd prep`, against actipy alone.

The folder holds `P01.cwa` (the 7-day recording, 60.5 M samples x 3, written by the tests'
`.cwa` writer, tests/data_prep/device_files.py), two 1-hour recordings `P02.cwa`, `P03.cwa`
(the test and validation subjects: a split needs three subjects) and `labels.csv`, ISO 8601
intervals with a zone. The wearer's day: sleep from 23:00 to 07:00 (restless, never still for
long), the watch on a table from 02:00 to 04:00 (non-wear: exactly still), and 30-minute blocks
of sitting, standing, walking and cycling by day, every eighth block unannotated; still
postures turn the watch through six orientations, and the device is miscalibrated (offsets
and gains of a few per cent) so that the gravity calibration has something to correct.

Two fresh processes, one after the other:
1. actipy alone: `actipy.read_device` (calibration on; no filter, no resampling: as the
   `device` reader calls it) and `find_nonwear_segments`, timed in the process;
2. `harkd prep configs/data/device-example.yaml` (calibration, non-wear and clip to wear on;
   50 Hz, 2.56 s windows) into an empty cache, with each pipeline stage timed in the process
   (the stage functions wrapped by a timer) and actipy's calls inside it timed apart.
Peak memory is each Python process's own ru_maxrss (`peak_rss_gib`); `children_peak_rss_gib` is
the largest of its children's (the Java parser, which a fork starts with the parent's pages).
Time is wall and CPU seconds (the process's and its children's, Java included); CPU time is the
steadier figure on a shared machine, and the goal's: harkd's stages after actipy (prep's CPU
time less actipy's calls in it) <= 0.5 x actipy's own CPU time, at <= 4 GiB peak memory.

    python benchmarks/bench_prep_device.py            # about 10 min on 2 free cores
    python benchmarks/bench_prep_device.py --days 1 --no-write

Writes the `device_7day` section of benchmarks/results/prep.json (other keys kept) and
benchmarks/results/prep.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "data_prep"))  # the tests' writers of device files
from device_files import write_long_cwa  # noqa: E402

CONFIG = REPO / "configs" / "data" / "device-example.yaml"
RESULTS = REPO / "benchmarks" / "results" / "prep.json"
REPORT = REPO / "benchmarks" / "results" / "prep.md"
RATE = 100
START = dt.datetime(2024, 3, 1, 10, 0, 0)  # London keeps GMT in March: the clock is UTC
BLOCK_S = 1800
#: the miscalibration written into every sample: raw = true * GAIN + OFFSET (g)
GAIN = np.array([1.02, 0.98, 1.01], dtype=np.float32)
OFFSET = np.array([0.03, -0.02, 0.015], dtype=np.float32)
#: gravity's direction in the still postures, turning through six orientations
POSTURES = np.array(
    [
        [0.3, 0.2, 0.93],
        [-0.95, 0.1, 0.3],
        [0.2, 0.95, -0.2],
        [0.1, -0.9, 0.4],
        [0.9, 0.3, -0.3],
        [-0.2, 0.3, -0.93],
    ],
    dtype=np.float32,
)
DAYTIME = ("sitting", "standing", "walking", "cycling")
GOAL_RATIO, GOAL_GIB = 0.5, 4.0
#: (module, attribute) timed in the harkd process: the pipeline's stages and actipy's calls
STAGES = [
    ("actipy", "read_device"),
    ("actipy.processing", "find_nonwear_segments"),
    ("data_prep.readers.device", "read_file"),
    ("data_prep.readers.device", "assign"),
    ("data_prep.readers.device", "label_samples"),
    ("data_prep.readers.device", "_recordings"),
    ("data_prep.pipeline", "load_recordings"),
    ("data_prep.pipeline", "read_source"),
    ("data_prep.pipeline", "repair"),
    ("data_prep.recording", "Recording.validate"),
    ("data_prep.pipeline", "check_labels"),
    ("data_prep.pipeline", "_select_groups"),
    ("data_prep.pipeline", "resample"),
    ("data_prep.pipeline", "apply_filters"),
    ("data_prep.pipeline", "build_windowset"),
    ("data_prep.pipeline", "label_windows"),
    ("data_prep.pipeline", "extract"),
    ("data_prep.pipeline", "train_norm"),
    ("data_prep.windowset", "WindowSet.save"),
    ("data_prep.pipeline", "prepare"),
]
ACTIPY_STAGES = ("actipy.read_device", "actipy.processing.find_nonwear_segments")


def block_plan(seconds: int) -> list[tuple[str, int]]:
    """(activity or `nonwear`, posture) of every 30-minute block from START (module doc)."""
    plan = []
    for k in range(seconds // BLOCK_S):
        hour = (START + dt.timedelta(seconds=k * BLOCK_S)).hour
        if 2 <= hour < 4:
            plan.append(("nonwear", 0))
        elif hour >= 23 or hour < 7:
            plan.append(("sleeping", 0))
        else:
            plan.append((DAYTIME[k % len(DAYTIME)], k % len(POSTURES)))
    return plan


def block_signal(activity: str, posture: int, rng: np.random.Generator) -> np.ndarray:
    """[BLOCK_S * RATE, 3] g, as the miscalibrated device records it."""
    n = BLOCK_S * RATE
    t = np.arange(n, dtype=np.float32) / RATE
    noise = rng.standard_normal((n, 3), dtype=np.float32)
    if activity == "nonwear":
        acc = np.tile(np.float32([0.0, 0.0, 1.0]), (n, 1))
    elif activity == "sleeping":  # restless: never still for 90 minutes
        acc = np.float32([0.1, -0.98, 0.15]) + 0.03 * noise
    elif activity in ("sitting", "standing"):
        g = POSTURES[posture] / np.linalg.norm(POSTURES[posture])
        acc = g + 0.003 * noise
    else:
        f, a = (1.9, 0.5) if activity == "walking" else (1.2, 0.3)
        acc = np.float32([-0.3, 0.1, 0.95]) + 0.02 * noise
        acc[:, 0] += a * np.sin(2 * np.pi * f * t)
        acc[:, 1] += 0.4 * a * np.sin(2 * np.pi * f * t + 1.0)
    return acc * GAIN + OFFSET


def write_recording(path: Path, seconds: int, seed: int) -> list[tuple[str, int]]:
    """Write `path` (`seconds` long, whole blocks) chunk by chunk; return its block plan."""
    plan = block_plan(seconds)
    rng = np.random.default_rng(seed)

    def chunks() -> Iterator[np.ndarray]:
        for activity, posture in plan:
            yield block_signal(activity, posture, rng)

    write_long_cwa(path, chunks(), len(plan) * BLOCK_S * RATE, RATE, START)
    return plan


def annotation_rows(subject: str, plan: list[tuple[str, int]]) -> list[dict[str, str]]:
    """ISO 8601 rows (with the zone) of every annotated block: not non-wear, not every 8th."""
    rows = []
    for k, (activity, _) in enumerate(plan):
        if activity == "nonwear" or k % 8 == 7:
            continue
        start = START + dt.timedelta(seconds=k * BLOCK_S)
        end = start + dt.timedelta(seconds=BLOCK_S)
        rows.append(
            {
                "subject": subject,
                "start": f"{start.isoformat()}+00:00",
                "end": f"{end.isoformat()}+00:00",
                "label": activity,
            }
        )
    return rows


def write_folder(folder: Path, days: float) -> dict[str, int]:
    """The recordings and labels.csv; returns each file's sample count."""
    rows, samples = [], {}
    for seed, (subject, seconds) in enumerate(
        [("P01", int(days * 86400)), ("P02", 3600), ("P03", 3600)]
    ):
        plan = write_recording(folder / f"{subject}.cwa", seconds, seed)
        rows += annotation_rows(subject, plan)
        samples[subject] = len(plan) * BLOCK_S * RATE
    pd.DataFrame(rows).to_csv(folder / "labels.csv", index=False)
    return samples


#: CPU seconds of a process and its waited-for children (actipy's Java parser)
CPU = """
import resource
def cpu_s():
    return sum(getattr(resource.getrusage(who), field) for who in (resource.RUSAGE_SELF,
               resource.RUSAGE_CHILDREN) for field in ("ru_utime", "ru_stime"))
"""
ACTIPY_ALONE = (
    CPU
    + """
import json, resource, sys, time
import actipy
t0, c0 = time.perf_counter(), cpu_s()
frame, info = actipy.read_device(sys.argv[1], lowpass_hz=None, calibrate_gravity=True,
                                 detect_nonwear=False, resample_hz=None, verbose=False)
t1 = time.perf_counter()
episodes = actipy.processing.find_nonwear_segments(frame, patience="90m", window="10s",
                                                   stdtol=0.015)
t2 = time.perf_counter()
print(json.dumps({"read_and_calibrate_s": t1 - t0, "nonwear_s": t2 - t1, "total_s": t2 - t0,
                  "cpu_s": cpu_s() - c0,
                  "samples": len(frame), "nonwear_episodes": len(episodes),
                  "calibrated": bool(info.get("CalibOK")),
                  "calibration_error_before_mg": info.get("CalibErrorBefore(mg)"),
                  "calibration_error_after_mg": info.get("CalibErrorAfter(mg)"),
                  "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                  "children_peak_rss_gib":
                      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20}))
"""
)

HARKD_PREP = (
    CPU
    + """
import functools, importlib, json, resource, sys, time
stages, seconds, cpu = json.loads(sys.argv[1]), {}, {}
for module_name, attribute in stages:
    owner = importlib.import_module(module_name)
    *outer, name = attribute.split(".")
    for part in outer:
        owner = getattr(owner, part)
    key = f"{module_name}.{attribute}"
    def timed(fn, key=key):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            t0, c0 = time.perf_counter(), cpu_s()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - t0
                cpu[key] = cpu.get(key, 0.0) + cpu_s() - c0
        return wrapper
    setattr(owner, name, timed(getattr(owner, name)))
from harkd.cli import main
t0, c0 = time.perf_counter(), cpu_s()
rc = main(["prep", *sys.argv[2:]])
total, total_cpu = time.perf_counter() - t0, cpu_s() - c0
print(json.dumps({"rc": rc, "total_s": total, "cpu_s": total_cpu, "stages_s": seconds,
                  "stages_cpu_s": cpu,
                  "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                  "children_peak_rss_gib":
                      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20}),
      file=sys.stderr)
"""
)


def run_child(code: str, *args: str) -> tuple[dict, str, float]:
    """Run `code` in a fresh interpreter; (its JSON line, its stdout, wall seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"bench_prep_device: a child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    stream = proc.stdout if code is ACTIPY_ALONE else proc.stderr
    line = [x for x in stream.splitlines() if x.startswith("{")][-1]
    return json.loads(line), proc.stdout, wall


def measure(folder: Path, cache: Path) -> dict:
    actipy_alone, _, actipy_wall = run_child(ACTIPY_ALONE, str(folder / "P01.cwa"))
    prep, printed, prep_wall = run_child(
        HARKD_PREP,
        json.dumps(STAGES),
        str(CONFIG),
        f"path={folder}",
        "split.kind=fixed",
        "split.test_subjects=[P02]",
        "split.val_subjects=[P03]",
        "--cache-dir",
        str(cache),
        "--no-progress",
    )
    stages, stages_cpu = prep["stages_s"], prep["stages_cpu_s"]
    actipy_in_prep = sum(stages.get(k, 0.0) for k in ACTIPY_STAGES)
    actipy_cpu_in_prep = sum(stages_cpu.get(k, 0.0) for k in ACTIPY_STAGES)
    after = prep["total_s"] - actipy_in_prep
    after_cpu = prep["cpu_s"] - actipy_cpu_in_prep
    return {
        "actipy_alone": {**actipy_alone, "process_wall_s": actipy_wall},
        "harkd_prep": {
            "total_s": prep["total_s"],
            "process_wall_s": prep_wall,
            "actipy_calls_s": actipy_in_prep,
            "after_actipy_s": after,
            "cpu_s": prep["cpu_s"],
            "actipy_calls_cpu_s": actipy_cpu_in_prep,
            "after_actipy_cpu_s": after_cpu,
            "stages_s": {k: round(v, 3) for k, v in stages.items()},
            "stages_cpu_s": {k: round(v, 3) for k, v in stages_cpu.items()},
            "peak_rss_gib": prep["peak_rss_gib"],
            "children_peak_rss_gib": prep["children_peak_rss_gib"],
            "summary": printed.strip().splitlines(),
        },
        "after_actipy_x_actipy_alone": after / actipy_alone["total_s"],
        "after_actipy_x_actipy_alone_cpu": after_cpu / actipy_alone["cpu_s"],
    }


def markdown(section: dict) -> str:
    a, h = section["actipy_alone"], section["harkd_prep"]
    lines = [
        "# Preparing raw device recordings: a 7-day Axivity .cwa",
        "",
        f"`benchmarks/bench_prep_device.py`: {section['file']}, through `harkd prep "
        "configs/data/device-example.yaml` (calibration, non-wear, clip to wear; 50 Hz, "
        "128-sample windows) and through actipy alone, each in a fresh process.",
        "",
        "| | wall s | CPU s (with Java's) | peak RSS (GiB) |",
        "|---|---:|---:|---:|",
        f"| actipy alone (read + calibrate + non-wear) | {a['total_s']:.1f} | {a['cpu_s']:.1f} | "
        f"{a['peak_rss_gib']:.2f} |",
        f"| harkd prep, all | {h['total_s']:.1f} | {h['cpu_s']:.1f} | {h['peak_rss_gib']:.2f} |",
        f"| harkd prep, actipy's calls in it | {h['actipy_calls_s']:.1f} | "
        f"{h['actipy_calls_cpu_s']:.1f} | |",
        f"| harkd prep, its stages after actipy | {h['after_actipy_s']:.1f} | "
        f"{h['after_actipy_cpu_s']:.1f} | |",
        "",
        f"After actipy, harkd adds {section['after_actipy_x_actipy_alone_cpu']:.2f} x actipy's "
        f"own CPU time (goal <= {GOAL_RATIO}; {section['after_actipy_x_actipy_alone']:.2f} x its "
        f"wall time) at a peak of {h['peak_rss_gib']:.2f} GiB (goal <= {GOAL_GIB}): "
        f"{'met' if section['meets_goals'] else 'NOT met'}.",
        "",
        "Stages, wall (CPU) seconds, inclusive: a stage's time holds the stages it calls:",
        "",
        *(f"- `{k}`: {v:.2f} ({h['stages_cpu_s'][k]:.2f})" for k, v in h["stages_s"].items()),
        "",
        f"Machine: {section['machine']}.",
    ]
    if section.get("before"):
        b = section["before"]
        lines[-2:-2] = [
            f"Before the stages were reworked: after actipy {b['after_actipy_s']:.1f} s "
            f"({b['after_actipy_x_actipy_alone']:.2f} x actipy; CPU "
            f"{b['after_actipy_cpu_s']:.1f} s, "
            f"{b['after_actipy_x_actipy_alone_cpu']:.2f} x), peak "
            f"{b['peak_rss_gib']:.2f} GiB.",
            "",
        ]
    return "\n".join(lines) + "\n"


def write_results(section: dict) -> None:
    """Replace the `device_7day` section of prep.json (other keys kept), atomically."""
    data = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    data["device_7day"] = section
    for path, text in ((RESULTS, json.dumps(data, indent=1) + "\n"), (REPORT, markdown(section))):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7.0, help="length of P01.cwa (days)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="a JSON of an earlier run's device_7day section, kept as `before`",
    )
    args = parser.parse_args(argv)
    if args.days * 86400 < BLOCK_S:
        parser.error("--days must cover at least one 30-minute block")
    with tempfile.TemporaryDirectory(prefix="bench_prep_device-") as tmp:
        folder, cache = Path(tmp, "watch"), Path(tmp, "cache")
        folder.mkdir()
        t0 = time.perf_counter()
        samples = write_folder(folder, args.days)
        written = time.perf_counter() - t0
        size_mib = (folder / "P01.cwa").stat().st_size / 2**20
        print(f"wrote {samples['P01']:,} samples x 3 ({size_mib:.0f} MiB) in {written:.0f} s")
        section = measure(folder, cache)
    h = section["harkd_prep"]
    section.update(
        file=f"P01.cwa, {args.days:g} days at {RATE} Hz, {samples['P01']:,} samples x 3, "
        f"{size_mib:.0f} MiB (+ 1-hour P02, P03)",
        goals={"after_actipy_x_actipy_alone_cpu": GOAL_RATIO, "peak_rss_gib": GOAL_GIB},
        meets_goals=bool(
            section["after_actipy_x_actipy_alone_cpu"] <= GOAL_RATIO
            and h["peak_rss_gib"] <= GOAL_GIB
        ),
        machine=f"{os.cpu_count()} cores, python {sys.version.split()[0]}, numpy "
        f"{np.__version__}, pandas {pd.__version__}",
    )
    if args.before is not None:
        before = json.loads(args.before.read_text())
        section["before"] = {
            "after_actipy_s": before["harkd_prep"]["after_actipy_s"],
            "after_actipy_x_actipy_alone": before["after_actipy_x_actipy_alone"],
            "after_actipy_cpu_s": before["harkd_prep"]["after_actipy_cpu_s"],
            "after_actipy_x_actipy_alone_cpu": before["after_actipy_x_actipy_alone_cpu"],
            "peak_rss_gib": before["harkd_prep"]["peak_rss_gib"],
            "stages_s": before["harkd_prep"]["stages_s"],
            "stages_cpu_s": before["harkd_prep"]["stages_cpu_s"],
        }
    print(json.dumps(section, indent=1))
    print(markdown(section))
    if not args.no_write:
        write_results(section)
        print(f"wrote {RESULTS} (device_7day) and {REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
