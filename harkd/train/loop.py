"""`fit`: train an assembled run (`harkd.train.assemble`) by driving its Distiller.

Each stage of `distiller.stages()` has its own AdamW optimiser on the stage's
`trainable_parameters()`, under the schedule of `train.schedule`, with gradient-norm clipping;
the Distiller returns its losses per batch and their sum is minimised. After every epoch of a
stage that selects the model, the student is scored on the validation split: the best
validation macro-F1 picks the model (the test split is never looked at before the end) and
`train.patience` epochs without improvement end the stage; with `train.selection: last` the
last epoch is kept (a fixed epoch budget, validation only reported). Either way the end also
scores the test split with the weights after the last epoch (`test_last` in metrics.json), so
every run answers both selection rules. The run trains on the
device of `train.device` (`harkd.train.device`), its forward passes in bfloat16 autocast with
`train.amp`. Before the first epoch the Distiller's `prepare` sees the validation split (what
it reports goes to metrics.json under `method`). A checkpoint is written atomically after every
epoch, so an interrupted run resumes there and ends with the same weights as an uninterrupted
one; a finished run with the same config, data and teachers is returned from its metrics.json
without training. The end writes the model with its run card (`harkd.train.runcard`), the plots
and metrics.json (last: it marks the run finished).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from data_prep.windowset import SPLITS, WindowSet
from harkd.config import RunConfig
from harkd.data import load_windowset
from harkd.distill.base import Stage, ValidationSplit
from harkd.train.assemble import Run, assemble, teacher_cards
from harkd.train.checkpoint import (
    load_checkpoint,
    optimizer_from_tensors,
    optimizer_to_tensors,
    save_checkpoint,
    save_model,
    with_prefix,
)
from harkd.train.device import autocast, resolve_device
from harkd.train.generated import save_generated
from harkd.train.metrics import classification_metrics, macro_f1, predict
from harkd.train.plots import confusion_csv, plot_confusion, plot_curve
from harkd.train.result import RunResult
from harkd.train.runcard import CardError, RunCard, card_for_run, read_card
from harkd.train.rundir import RunDir, atomic_write_bytes, atomic_write_json, atomic_write_yaml
from harkd.train.schedule import lr_factor
from harkd.train.seeding import rng_state, set_rng_state

#: a hook called after each epoch's checkpoint is written (global epoch, 0-based)
EpochHook = Callable[[int], None]


def fit(
    cfg: RunConfig,
    ws: WindowSet | None = None,
    run_dir: str | Path | None = None,
    progress: bool = True,
    *,
    cache_dir: Path | None = None,
    on_epoch_end: EpochHook | None = None,
    device: str | None = None,
) -> RunResult:
    """Train `cfg` (see the module docstring) and return its `RunResult`.

    Args:
        cfg: the run config; `cfg.distill.method` "none" trains `cfg.model` alone.
        ws: the prepared WindowSet (default: `harkd.data.load_windowset(cfg, cache_dir)`).
        run_dir: the run directory (default `<cfg.output_dir>/<cfg.name>`).
        progress: tqdm bars and one line per epoch on stderr.
        on_epoch_end: called with the global epoch after its checkpoint is on disk (tests use
            it to interrupt a run).
        device: the device a grid placed the run on (`cuda:N` or `cpu`), taken where
            `train.device` is `auto` or `cuda` (`harkd.train.device.resolve_device`).
    """
    torch_device, note = resolve_device(cfg.train.device, placed=device)  # before any data
    rd = RunDir(Path(run_dir) if run_dir is not None else Path(cfg.output_dir) / cfg.name)
    ws = ws if ws is not None else load_windowset(cfg, cache_dir, progress)
    inputs = inputs_hash(cfg, ws, teacher_cards(cfg))
    cached = reuse(rd, cfg.config_hash(), inputs)
    if cached is not None:
        if progress:
            print(
                f"reusing {rd.root}: finished with the same config {cached.config_hash}",
                file=sys.stderr,
            )
        return cached
    if progress and note:
        print(note, file=sys.stderr)
    run = assemble(cfg, ws, torch_device)
    return _Fitter(run, rd.make(), progress, inputs, on_epoch_end).fit()


def inputs_hash(cfg: RunConfig, ws: WindowSet, teachers: dict[str, RunCard]) -> str:
    """Hash of what a run's result depends on beyond its config: the data and the teachers."""
    blob = json.dumps(
        {
            "config": cfg.config_hash(),
            "data": ws.meta.get("config_hash"),
            "teachers": {k: c.config_hash for k, c in sorted(teachers.items())},
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def reuse(rd: RunDir, config_hash: str, inputs: str) -> RunResult | None:
    """The stored result of a finished run with the same config, data and teachers whose run
    card this harkd reads (a run with an older card is trained again)."""
    if not rd.metrics.is_file():
        return None
    stored = json.loads(rd.metrics.read_text())
    if stored.get("config_hash") != config_hash or stored.get("inputs_hash") != inputs:
        return None
    try:
        read_card(rd.root)
    except CardError:
        return None
    return RunResult.from_dict(stored, rd.root)


@dataclass
class _Progress:
    """Where a run is: what the checkpoint's JSON state carries."""

    stage_index: int = 0
    stage_epoch: int = 0  # epochs finished in the current stage
    stage_done: bool = False
    global_epoch: int = 0
    best_f1: float = -1.0
    best_epoch: int | None = None
    bad_epochs: int = 0
    train_s: float = 0.0
    train_windows: int = 0
    pure_train_s: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)


class _Fitter:
    """Fits one assembled run: stages, epochs, model selection, checkpoints and resume."""

    def __init__(
        self,
        run: Run,
        rd: RunDir,
        progress: bool,
        inputs: str,
        on_epoch_end: EpochHook | None,
    ) -> None:
        self.run, self.cfg, self.rd, self.show, self.inputs = run, run.cfg, rd, progress, inputs
        self.distiller, self.batches = run.distiller, run.batches
        self.hook = on_epoch_end
        self.state = _Progress()
        self.best: dict[str, torch.Tensor] | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self._resume_tensors: dict[str, torch.Tensor] | None = None
        self._resume_optim: dict[str, Any] | None = None
        self.method_report: dict[str, Any] = {}

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        """The Distiller's state without its frozen teachers (their runs hold them)."""
        return {
            k: v for k, v in self.distiller.state_dict().items() if not k.startswith("teachers.")
        }

    def _load_state_tensors(self, tensors: dict[str, torch.Tensor], what: str) -> None:
        result = self.distiller.load_state_dict(tensors, strict=False)
        missing = [k for k in result.missing_keys if not k.startswith("teachers.")]
        if missing or result.unexpected_keys:
            raise ValueError(
                f"{self.rd.last}: {what} does not fit this run's Distiller: "
                f"missing {missing}, unexpected {result.unexpected_keys}"
            )

    def _resume(self) -> None:
        loaded = load_checkpoint(self.rd)
        if loaded is None:
            return
        tensors, state = loaded
        if state.get("config_hash") != self.cfg.config_hash() or state.get("inputs") != self.inputs:
            self._say(f"{self.rd.last}: written for another config or data; starting over")
            return
        self.state = _Progress(**state["progress"])
        self._load_state_tensors(with_prefix(tensors, "distiller"), "the checkpoint")
        self.best = with_prefix(tensors, "best") if state["has_best"] else None
        set_rng_state(tensors, state["rng"], self.batches.generator, self.run.device)
        self._resume_tensors = tensors
        self._resume_optim = state.get("optimizer")
        self._say(f"resuming {self.rd.root} after epoch {self.state.global_epoch}")

    # -- training ------------------------------------------------------------------------------

    def fit(self) -> RunResult:
        cfg = self.cfg
        atomic_write_yaml(self.rd.config, cfg.model_dump(mode="json"))
        self.rd.metrics.unlink(missing_ok=True)  # another config's result: not this run's
        r = self.run
        self.method_report = self.distiller.prepare(ValidationSplit(r.val_x, r.val_y, macro_f1))
        if r.training_windows:
            n = r.training_windows
            self._say(f"{cfg.name}: method {cfg.distill.method} trains on {n['kept']} of the "
                      f"{n['split']} training windows ({n['dropped']} dropped, "
                      f"{n['per_epoch']} drawn per epoch)")
        self._resume()
        stages = self.distiller.stages()
        s = self.state
        first = s.stage_index + (1 if s.stage_done else 0)
        for si in range(first, len(stages)):
            if si != s.stage_index:
                s.stage_index, s.stage_epoch, s.stage_done, s.bad_epochs = si, 0, False, 0
            self._run_stage(stages[si])
        return self._finish()

    def _run_stage(self, stage: Stage) -> None:
        tc, s = self.cfg.train, self.state
        self.distiller.set_stage(stage.name)
        params = self.distiller.trainable_parameters()
        if not params:
            raise ValueError(f"stage {stage.name!r} of {self.cfg.distill.method!r} trains nothing")
        self.optimizer = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
        if self._resume_tensors is not None and s.stage_epoch > 0:
            self.optimizer.load_state_dict(
                optimizer_from_tensors(self._resume_tensors, self._resume_optim)
            )
        self._resume_tensors = None
        n_epochs = stage.epochs or tc.epochs
        while s.stage_epoch < n_epochs:
            record = self._train_epoch(stage, params, n_epochs)
            if stage.selects_model:
                self._select(record)
            s.history.append(record)
            s.stage_epoch += 1
            s.global_epoch += 1
            stop = stage.selects_model and tc.patience is not None and s.bad_epochs >= tc.patience
            s.stage_done = stop or s.stage_epoch >= n_epochs
            self._checkpoint()
            self._say(self._epoch_line(stage, n_epochs, record, stop))
            if self.hook is not None:
                self.hook(s.global_epoch - 1)
            if stop:
                break

    def _train_epoch(self, stage: Stage, params: list, n_epochs: int) -> dict[str, Any]:
        tc, s, d = self.cfg.train, self.state, self.distiller
        steps = len(self.batches)
        total_steps = n_epochs * steps
        sums: dict[str, float] = {}
        n_seen = 0
        t0 = time.perf_counter()
        bar = tqdm(
            total=self.batches.n_windows,
            unit="win",
            unit_scale=True,
            leave=False,
            disable=not self.show,
            desc=f"{self.cfg.name} {stage.name} {s.stage_epoch + 1}/{n_epochs}",
        )
        d.train()
        for i, batch in enumerate(self.batches.epoch(s.global_epoch)):
            with autocast(self.run.device, tc.amp):
                _, losses = d.forward_train(batch, s.stage_epoch)
            loss = sum(losses.values())
            if not torch.isfinite(loss):
                terms = {k: float(v) for k, v in losses.items()}
                raise FloatingPointError(
                    f"{self.rd.root}: non-finite loss at stage {stage.name!r} epoch "
                    f"{s.stage_epoch + 1} step {i + 1}: {terms}"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if tc.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, tc.grad_clip)
            lr = tc.lr * lr_factor(tc.schedule, s.stage_epoch * steps + i, total_steps)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.optimizer.step()
            b = len(batch.x)
            n_seen += b
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) * b
            bar.update(b)
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}", refresh=False)
        bar.close()
        seconds = time.perf_counter() - t0
        s.pure_train_s += seconds
        s.train_windows += n_seen
        terms = {k: v / n_seen for k, v in sums.items()}
        return {
            "epoch": s.global_epoch,
            "stage": stage.name,
            "loss": sum(terms.values()),
            "losses": terms,
            "lr_end": lr,
            "train_s": seconds,
            "windows_per_s": n_seen / seconds if seconds > 0 else None,
            "val_macro_f1": None,
        }

    def _select(self, record: dict[str, Any]) -> None:
        s = self.state
        t0 = time.perf_counter()
        r = self.run
        logits = predict(self.distiller, r.val_x, self.cfg.train.eval_batch_size)
        val = classification_metrics(r.val_y, logits, r.ws.label_names)
        record.update(
            val_macro_f1=val["macro_f1"],
            val_accuracy=val["accuracy"],
            val_s=time.perf_counter() - t0,
        )
        if val["macro_f1"] > s.best_f1 or self.cfg.train.selection == "last":
            s.best_f1, s.best_epoch, s.bad_epochs = val["macro_f1"], s.global_epoch, 0
            self.best = {k: v.detach().clone() for k, v in self._state_tensors().items()}
            record["best"] = True
        else:
            s.bad_epochs += 1

    def _checkpoint(self) -> None:
        s = self.state
        s.train_s = s.pure_train_s + sum(h.get("val_s", 0.0) for h in s.history)
        tensors = {f"distiller.{k}": v for k, v in self._state_tensors().items()}
        optim_tensors, optim_plain = optimizer_to_tensors(self.optimizer)
        tensors.update(optim_tensors)
        if self.best is not None:
            tensors.update({f"best.{k}": v for k, v in self.best.items()})
        rng_tensors, rng_plain = rng_state(self.batches.generator, self.run.device)
        tensors.update(rng_tensors)
        save_checkpoint(
            self.rd,
            tensors,
            {
                "config_hash": self.cfg.config_hash(),
                "inputs": self.inputs,
                "progress": dataclasses.asdict(s),
                "optimizer": optim_plain,
                "has_best": self.best is not None,
                "rng": rng_plain,
            },
        )

    # -- the end -------------------------------------------------------------------------------

    def _finish(self) -> RunResult:
        cfg, ws, s = self.cfg, self.run.ws, self.state
        t0 = time.perf_counter()
        last = self._score("test")  # the fixed-budget rule: the weights after the last epoch
        if self.best is not None:
            self._load_state_tensors(self.best, "the best-so-far state")
        metrics = {split: last if split == "test" and self.best is None else self._score(split)
                   for split in SPLITS}
        metrics["test_last"] = last
        if self.method_report:  # what the method measured or fitted before training
            metrics["method"] = self.method_report
        if self.run.training_windows:  # the windows the method's training set dropped
            metrics["training_windows"] = self.run.training_windows
        eval_s = time.perf_counter() - t0
        model = self.distiller.student.model
        result = RunResult(
            metrics=metrics,
            best_epoch=s.best_epoch,
            epochs_run=s.global_epoch,
            timings={
                "train_s": s.train_s,
                "s_per_epoch": s.train_s / max(s.global_epoch, 1),
                "train_windows_per_s": s.train_windows / s.pure_train_s if s.pure_train_s else 0.0,
                "eval_s": eval_s,
            },
            n_params=sum(p.numel() for p in model.parameters()),
            run_dir=self.rd.root,
            config_hash=cfg.config_hash(),
            seed=cfg.train.seed,
            history=s.history,
            name=cfg.name,
            inputs_hash=self.inputs,
        )
        card = card_for_run(cfg, ws, self.run.channels, result.n_params, s.best_epoch, metrics,
                            self.run.device)
        save_model(self.rd, model, card)
        labels = ws.label_names
        confusion = metrics["test"]["confusion"]
        atomic_write_bytes(self.rd.confusion_csv, confusion_csv(confusion, labels).encode())
        plot_confusion(
            confusion,
            labels,
            self.rd.confusion_png,
            f"{cfg.name}: test (macro-F1 {metrics['test']['macro_f1']:.3f})",
        )
        plot_curve(s.history, self.rd.curve, f"{cfg.name} ({cfg.distill.method})")
        generated = self.distiller.generated_windows()
        if generated is not None:  # a generative method's windows, beside real ones
            train = ws.mask("train")
            save_generated(self.rd, generated, self.run.normalizer(ws.X[train]).numpy(),
                           ws.y[train], labels, self.run.channels,
                           [ws.meta["channels"][c] for c in self.run.channels])
        atomic_write_json(self.rd.metrics, result.to_dict())  # last: marks the run finished
        return result

    def _score(self, split: str) -> dict[str, Any]:
        """Classification metrics of the distiller's model as it stands on `split`."""
        ws, m = self.run.ws, self.run.ws.mask(split)
        logits = predict(self.distiller, self.run.normalizer(ws.X[m]),
                         self.cfg.train.eval_batch_size)
        return classification_metrics(ws.y[m], logits, ws.label_names, ws.subject[m])

    # -- output --------------------------------------------------------------------------------

    def _epoch_line(self, stage: Stage, n_epochs: int, r: dict[str, Any], stop: bool) -> str:
        terms = " ".join(f"{k} {v:.4f}" for k, v in r["losses"].items())
        line = (
            f"{self.cfg.name} {stage.name} epoch {self.state.stage_epoch}/{n_epochs}: "
            f"loss {r['loss']:.4f} ({terms})"
        )
        if r["val_macro_f1"] is not None:
            line += f" | val macro-F1 {r['val_macro_f1']:.4f}" + (" *" if r.get("best") else "")
        if r["windows_per_s"]:
            line += f" | {r['windows_per_s']:.0f} win/s"
        return line + (f" | early stop (patience {self.cfg.train.patience})" if stop else "")

    def _say(self, text: str) -> None:
        if self.show:
            tqdm.write(text, file=sys.stderr)
