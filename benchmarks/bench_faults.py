"""Random SIGKILL/resume trials of a small graph grid: runs lost, duplicated and re-done.

The grid: a teacher node (an acc+gyro cnn1d) and the tiny acc-only students distilled from it
(kd, one per seed), one epoch each on 8 HAPT subjects, so a run takes seconds. First the grid
runs once uninterrupted (the reference models and its duration D). Then each trial starts
`harkd grid` in its own process group, waits a random time in [0.5 s, D] and SIGKILLs the
driver and its worker together (a power cut), then looks at the store; the next trial resumes
the same grid, and a round that finishes starts a fresh grid folder. After the last trial
every round is resumed to the end and checked:

- lost: a run not done at the end, or done once and later not done, or done without its
  metrics.json;
- duplicated: a run trained to the end twice (its metrics.json or its store row rewritten
  after it was first seen done);
- re-done: claims beyond the first (a run killed mid-way and resumed from its checkpoint);
- identical: final models byte-identical to the uninterrupted reference.

Goal: 0 lost, 0 duplicated. Writes benchmarks/results/faults.json and faults.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from data_prep.config import load_data_config
from data_prep.pipeline import prepare
from harkd.grid.store import RunStore

REPO = Path(__file__).resolve().parents[1]
HAPT_QUICK = REPO / "configs" / "data" / "hapt-quick.yaml"
OUT = REPO / "benchmarks" / "results" / "faults.json"
SMALL = {"subjects": [1, 2, 3, 4, 5, 6, 7, 8],
         "split": {"test_subjects": [2, 4], "val_subjects": [3, 5]}}
TRAIN = {"epochs": 1, "batch_size": 256, "patience": None}


def graph_spec(grid_dir: Path, students: int) -> dict[str, Any]:
    """A teacher node and `students` kd students that need it."""
    return {
        "name": "faults", "output_dir": str(grid_dir),
        "nodes": {"teacher": {"config": {
            "data": str(HAPT_QUICK), "train": TRAIN,
            "model": {"name": "cnn1d", "view": ["acc", "gyro"], "params": {"widths": [8, 16]}}}}},
        "base": {"data": str(HAPT_QUICK), "data_overrides": SMALL, "train": TRAIN,
                 "model": {"name": "tiny", "view": ["acc"]},
                 "distill": {"method": "kd", "params": {"alpha": 0.5, "temperature": 4.0}}},
        "axes": {"teachers": [{"label": "teacher",
                               "set": {"teachers": {"t": {"from": "teacher"}}}}],
                 "seed": list(range(students))},
    }


def start_driver(spec_path: Path, cache: Path) -> subprocess.Popen:
    argv = [sys.executable, "-m", "harkd.cli", "grid", str(spec_path), "--workers", "1",
            "--threads", "1", "--no-progress"]
    return subprocess.Popen(argv, cwd=REPO, env={**os.environ, "HARKD_CACHE": str(cache)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)  # the driver and its pool: one group


def finish(spec_path: Path, cache: Path) -> float:
    """Run the grid to the end; returns the seconds it took."""
    t0 = time.perf_counter()
    proc = start_driver(spec_path, cache)
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"bench_faults: {spec_path}: the grid did not finish: "
                         f"{err.decode().strip().splitlines()[-1:]}")
    return time.perf_counter() - t0


class Round:
    """One grid folder, killed and resumed until it finishes; what each look at it saw."""

    def __init__(self, tmp: Path, index: int, students: int) -> None:
        self.grid_dir = tmp / f"round{index}"
        self.spec_path = tmp / f"round{index}.json"
        self.spec_path.write_text(json.dumps(graph_spec(self.grid_dir, students)))
        self.seen_done: dict[str, tuple[Any, ...]] = {}  # hash -> (finished, metrics.json stat)
        self.lost: set[str] = set()
        self.duplicated: set[str] = set()
        self.kills = 0

    def look(self) -> dict[str, str]:
        """Check every row against what earlier looks saw; returns hash -> status."""
        store_file = self.grid_dir / "runs.sqlite"
        if not store_file.is_file():
            return {}
        with RunStore(store_file) as store:
            rows = store.rows()
        for r in rows:
            metrics = self.grid_dir / "runs" / r.hash / "metrics.json"
            if r.status == "done":
                if not metrics.is_file():
                    self.lost.add(r.hash)
                    continue
                st = metrics.stat()
                mark = (r.finished, st.st_ino, st.st_mtime_ns)
                if self.seen_done.setdefault(r.hash, mark) != mark:
                    self.duplicated.add(r.hash)
            elif r.hash in self.seen_done:
                self.lost.add(r.hash)  # it was done, and is not any more
        return {r.hash: r.status for r in rows}

    def summary(self, reference: dict[str, str]) -> dict[str, Any]:
        status = self.look()
        with RunStore(self.grid_dir / "runs.sqlite") as store:
            rows = store.rows()
        not_done = {h for h, s in status.items() if s != "done"}
        models = model_hashes(self.grid_dir)
        return {
            "kills": self.kills, "runs": len(rows),
            "lost": sorted(self.lost | not_done), "duplicated": sorted(self.duplicated),
            "re_done": sum(r.attempts - 1 for r in rows),
            "identical_models": sum(models.get(h) == m for h, m in reference.items()),
        }


def model_hashes(grid_dir: Path) -> dict[str, str]:
    return {p.parent.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in grid_dir.glob("runs/*/model.safetensors")}


def trials(n: int, students: int, seed: int, tmp: Path, cache: Path) -> dict[str, Any]:
    rng = random.Random(seed)
    reference = Round(tmp, 0, students)
    duration = finish(reference.spec_path, cache)
    ref_models = model_hashes(reference.grid_dir)
    print(f"reference: {len(ref_models)} runs uninterrupted in {duration:.1f} s")
    rounds = [Round(tmp, 1, students)]
    delays = []
    kills = 0
    while kills < n:
        current = rounds[-1]
        proc = start_driver(current.spec_path, cache)
        delays.append(rng.uniform(0.5, duration))
        try:
            proc.wait(timeout=delays[-1])
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            current.kills += 1
            kills += 1
        err = proc.stderr.read().decode().strip()
        proc.stderr.close()
        if proc.returncode not in (0, -signal.SIGKILL):
            raise SystemExit(f"bench_faults: the grid failed on its own: {err[-500:]}")
        done = sum(s == "done" for s in current.look().values())
        what = "finished" if proc.returncode == 0 else f"kill {kills}/{n}"
        print(f"{what} after {delays[-1]:.1f} s; round {len(rounds)}: "
              f"{done}/{len(ref_models)} done")
        if proc.returncode == 0:
            rounds.append(Round(tmp, len(rounds) + 1, students))
    for r in rounds:
        finish(r.spec_path, cache)
    results = [r.summary(ref_models) for r in rounds]
    return {
        "kills": kills, "driver_starts": len(delays), "seed": seed,
        "grid": f"1 teacher node + {students} kd students, 1 epoch each, 8 HAPT subjects, "
                "1 local worker of 1 thread",
        "reference_s": duration, "kill_delay_s": [min(delays), max(delays)],
        "rounds": results,
        "runs": sum(r["runs"] for r in results),
        "lost": sum(len(r["lost"]) for r in results),
        "duplicated": sum(len(r["duplicated"]) for r in results),
        "re_done": sum(r["re_done"] for r in results),
        "identical_models": sum(r["identical_models"] for r in results),
        "load_average_after": os.getloadavg(),
    }


def markdown(res: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {i + 1} | {r['kills']} | {r['runs']} | {len(r['lost'])} | {len(r['duplicated'])} | "
        f"{r['re_done']} | {r['identical_models']}/{r['runs']} |"
        for i, r in enumerate(res["rounds"]))
    return (
        f"# SIGKILL/resume trials (`benchmarks/bench_faults.py`)\n\n"
        f"{res['grid']}; {res['kills']} SIGKILLs of driver and worker together over "
        f"{res['driver_starts']} driver starts (the others finished before their kill time), "
        f"kill delay uniform in [0.5 s, {res['reference_s']:.0f} s] (the "
        f"uninterrupted grid's time), seed {res['seed']}; load average after "
        f"{res['load_average_after'][0]:.1f} (a study shared the 2 cores).\n\n"
        "| round | kills | runs | lost | duplicated | re-done | models identical to the "
        "uninterrupted grid |\n|---|---|---|---|---|---|---|\n"
        f"{rows}\n\n**Total:** {res['runs']} runs, {res['lost']} lost, {res['duplicated']} "
        f"duplicated, {res['re_done']} re-done (resumed from their checkpoint after a kill), "
        f"{res['identical_models']}/{res['runs']} models byte-identical. Goal: 0 lost, "
        "0 duplicated.\n")


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="SIGKILLs (default 20)")
    parser.add_argument("--students", type=int, default=3, help="students per grid")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill delays")
    args = parser.parse_args()
    for name in ("trials", "students"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        prepare(load_data_config(HAPT_QUICK, [f"subjects={SMALL['subjects']}",
                                              "split.test_subjects=[2, 4]",
                                              "split.val_subjects=[3, 5]"]),
                cache_dir=cache, progress=False)
        res = trials(args.trials, args.students, args.seed, Path(tmp), cache)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(OUT, json.dumps(res, indent=1))
    write_atomic(OUT.with_suffix(".md"), markdown(res))
    print(f"{res['runs']} runs over {res['kills']} kills: {res['lost']} lost, "
          f"{res['duplicated']} duplicated, {res['re_done']} re-done, "
          f"{res['identical_models']}/{res['runs']} identical; wrote {OUT}")


if __name__ == "__main__":
    main()
