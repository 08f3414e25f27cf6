"""Assembling a run: everything `fit` trains and scores, built from a run config and its data.

`assemble(cfg, ws)` sets the torch threads, seeds every RNG with `train.seed` (and sets
`train.deterministic`), then builds, in this order (the order the seeded RNG is drawn in, so a
config always starts from the same weights, on any device): the model on its view, the frozen
teachers from their run directories (each card checked against the config and, by
`check_compatible`, against the data), the Distiller, the augmentation policy, the training
batches (of the windows the method's `training_set` keeps) and the validation windows that
select the model. The Distiller (teachers included), the training and pool windows and the
validation windows then move to the run's device
(`harkd.train.device`) once, so batches are cut there; the augmentation generator stays on the
CPU (its random numbers are the same on every device).

`BatchSource` is the one place a training `Batch` is put together (loader, augmentation,
class weights, and for a method with `pool: true` one batch of unlabelled pool windows).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from data_prep.windowset import WindowSet
from harkd.config import ConfigError, RunConfig, TeacherConfig
from harkd.data import (
    Normalizer,
    PoolLoader,
    WindowLoader,
    batch_bounds,
    make_loader,
    make_pool_loader,
    view_channels,
)
from harkd.distill.base import (
    Batch,
    DistillContext,
    Distiller,
    FrozenTeacher,
    ViewModel,
    build_distiller,
    distiller_class,
)
from harkd.models.base import build_model
from harkd.train.checkpoint import load_run_model
from harkd.train.compat import check_compatible, check_trainable
from harkd.train.device import check_amp, resolve_device
from harkd.train.runcard import RunCard, read_card
from harkd.train.seeding import seed_everything

#: offset of the augmentation generator's seed from `train.seed`
AUGMENT_SEED_OFFSET = 0x5EED
#: an augmentation policy: (x, y_soft, generator) -> (x, y_soft)
Policy = Callable[
    [torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]
]


class BatchSource:
    """The training batches of a run, epoch by epoch.

    Each batch of the train split's loader (normalised windows, every channel) becomes a
    `Batch`: labels one-hot as `y_soft`, then the augmentation policy with this source's own
    seeded generator (the teachers get the clean windows with `teacher_input: clean`), then
    the class weights scale the columns of `y_soft` (which makes every cross-entropy against
    it the class-weighted one); each batch carries its windows' positions in the training
    split (`Batch.index`) and, given `subject` (one id per training window), their subjects
    (`Batch.subject`). With a `pool` loader, each batch also carries the next batch of
    unlabelled pool windows, through the same augmentation (the pool's order depends only on
    the seed and the epoch, so a resumed run sees the same pool batches). With `data_free` (a
    data-free method), the batches carry only their size and nothing of the training windows.
    """

    def __init__(
        self,
        loader: WindowLoader,
        num_classes: int,
        policy: Policy | None,
        clean_teacher_input: bool,
        class_weights: torch.Tensor | None,
        seed: int,
        pool: PoolLoader | None = None,
        subject: torch.Tensor | None = None,
        data_free: bool = False,
    ) -> None:
        self.loader, self.num_classes, self.policy = loader, num_classes, policy
        self.clean_teacher_input, self.class_weights = clean_teacher_input, class_weights
        self.generator = torch.Generator().manual_seed(seed + AUGMENT_SEED_OFFSET)
        self.pool, self.subject = pool, subject
        self.data_free = data_free

    def __len__(self) -> int:
        """Batches per epoch."""
        return len(self.loader)

    @property
    def n_windows(self) -> int:
        return self.loader.n_windows

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """The batches of `epoch` (their order depends only on the seed and the epoch)."""
        self.loader.set_epoch(epoch)
        pool = None
        if self.pool is not None:
            self.pool.set_epoch(epoch)
            pool = iter(self.pool)
        if self.data_free:
            yield from self._sizes_only()
            return
        positions = torch.arange(self.loader.n_windows, device=self.loader.x.device)
        for pos in self.loader.batch_positions():
            batch = self.batch(self.loader.x[pos], self.loader.y[pos])
            batch.index = positions[pos]
            if self.subject is not None:
                batch.subject = self.subject[pos]
            if pool is not None:
                batch.x_pool, batch.x_pool_teacher = self._augmented(next(pool))
            yield batch

    def _sizes_only(self) -> Iterator[Batch]:
        """A data-free method's batches: as many and as large as the training split's, carrying
        nothing of it (`x` [B, C, 0], `y` -1, `y_soft` zero; `Distiller.data_free`)."""
        x = self.loader.x
        for lo, hi in batch_bounds(self.loader.n_windows, self.loader.batch_size):
            n = hi - lo
            y = torch.full((n,), -1, dtype=torch.long, device=x.device)
            y_soft = x.new_zeros(n, self.num_classes)
            yield Batch(x=x.new_empty(n, x.shape[1], 0), y=y, y_soft=y_soft)

    def _augmented(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Unlabelled windows through the policy (labels unused), and the teachers' input."""
        if self.policy is None:
            return x, None
        uniform = torch.full((len(x), self.num_classes), 1 / self.num_classes, device=x.device)
        out, _ = self.policy(x, uniform, self.generator)
        return out, x if self.clean_teacher_input else None

    def batch(self, x: torch.Tensor, y: torch.Tensor) -> Batch:
        y_soft = F.one_hot(y, self.num_classes).float()
        x_teacher = None
        if self.policy is not None:
            clean = x
            x, y_soft = self.policy(x, y_soft, self.generator)
            y = y_soft.argmax(dim=1)
            if self.clean_teacher_input:
                x_teacher = clean
        if self.class_weights is not None:
            y_soft = y_soft * self.class_weights
        return Batch(x=x, y=y, y_soft=y_soft, x_teacher=x_teacher)


@dataclass
class Run:
    """An assembled run: what `fit` trains (the Distiller) and the data it reads."""

    cfg: RunConfig
    ws: WindowSet
    channels: list[int]  # the trained model's view, as channel indices of `ws`
    distiller: Distiller
    normalizer: Normalizer  # training-split statistics of every channel
    batches: BatchSource
    val_x: torch.Tensor  # normalised validation windows (model selection), on `device`
    val_y: np.ndarray
    device: torch.device
    #: when the method trains on part of the training split (`Distiller.training_set`): the
    #: split's windows, the distinct ones kept, those dropped and the windows per epoch
    training_windows: dict[str, int] | None = None


def assemble(cfg: RunConfig, ws: WindowSet, device: torch.device | None = None) -> Run:
    """Build the run of `cfg` on `ws` (module docstring) on `device` (default: the one
    `train.device` resolves to); config problems are `ConfigError`s."""
    tc = cfg.train
    if device is None:
        device, _ = resolve_device(tc.device)
    check_amp(device, tc.amp)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    seed_everything(tc.seed, tc.deterministic)
    check_trainable(ws)
    window = int(ws.X.shape[-1])
    channels = view_channels(ws, cfg.model.view)
    try:
        model = build_model(
            cfg.model.name, len(channels), ws.num_classes, window, **cfg.model.params
        )
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"model: {err.args[0] if err.args else err}") from None
    train_ws = training_set(cfg, ws)
    subjects, subject_ids = train_subjects(train_ws)
    context = DistillContext(
        ws.num_classes, window, ws.groups, ws.label_names, len(subject_ids), subjects
    )
    teachers = load_teachers(cfg, ws)
    try:
        distiller = build_distiller(
            cfg.distill.method, ViewModel(model, channels), teachers, context, cfg.distill.params
        )
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"distill: {err.args[0] if err.args else err}") from None
    distiller.to(device)
    normalizer = Normalizer.from_windowset(ws)
    loader = make_loader(
        train_ws, "train", tc.batch_size, shuffle=True, seed=tc.seed, normalizer=normalizer
    )
    pool = make_pool_loader(ws, tc.batch_size, tc.seed, normalizer) if distiller.uses_pool else None
    batches = BatchSource(
        loader.to(device),
        ws.num_classes,
        augmentation_policy(cfg, ws),
        cfg.augment.teacher_input == "clean",
        class_weights(ws).to(device) if tc.class_weights else None,
        tc.seed,
        pool.to(device) if pool is not None else None,
        subject_ids.to(device),
        data_free=distiller.data_free,
    )
    val = ws.mask("val")
    if not val.any():
        raise ValueError("the validation split is empty: model selection needs it")
    val_x = normalizer(ws.X[val]).to(device)
    return Run(cfg, ws, channels, distiller, normalizer, batches, val_x, ws.y[val], device,
               None if train_ws is ws else training_windows(ws, train_ws))


def training_windows(ws: WindowSet, train_ws: WindowSet) -> dict[str, int]:
    """How many of `ws`'s training windows the method's `train_ws` keeps (distinct windows:
    a recording and a start), how many it drops, and how many it draws per epoch."""
    split = int(ws.mask("train").sum())
    mine = train_ws.mask("train")
    kept = np.unique(np.stack([train_ws.recording[mine], train_ws.start[mine]]), axis=1).shape[1]
    return {"split": split, "kept": kept, "dropped": split - kept, "per_epoch": int(mine.sum())}


def training_set(cfg: RunConfig, ws: WindowSet) -> WindowSet:
    """The WindowSet the training batches are cut from: the method's choice
    (`Distiller.training_set`, e.g. one recording), by default `ws`."""
    try:
        cls = distiller_class(cfg.distill.method)
        return cls.training_set(ws, cls.check_config(cfg.distill.params, list(cfg.teachers)))
    except (KeyError, ValueError) as err:
        raise ConfigError(f"distill: {err.args[0]}") from None


def train_subjects(ws: WindowSet) -> tuple[tuple[str, ...], torch.Tensor]:
    """The training subjects (sorted) and each training window's position among them."""
    subject = ws.subject[ws.mask("train")].astype(str)
    names, ids = np.unique(subject, return_inverse=True)
    return tuple(names.tolist()), torch.as_tensor(ids, dtype=torch.long)


def check_method(cfg: RunConfig) -> None:
    """Refuse an unknown method, bad `distill.params` or a wrong number of teachers before
    any data is prepared (`assemble` builds the method, which checks the same)."""
    try:
        distiller_class(cfg.distill.method).check_config(cfg.distill.params, list(cfg.teachers))
    except (KeyError, ValueError) as err:
        raise ConfigError(f"distill: {err.args[0]}") from None


def augmentation_policy(cfg: RunConfig, ws: WindowSet) -> Policy | None:
    """The policy `augment.policy` names, or None for "none"."""
    if cfg.augment.policy == "none":
        return None
    from harkd.augment.policies import build_policy

    try:
        return build_policy(cfg.augment.policy, ws.groups, ws.meta["norm"])
    except KeyError as err:
        raise ConfigError(f"augment.policy: {err.args[0]}") from None


def class_weights(ws: WindowSet) -> torch.Tensor:
    """n / (K * n_k) on the training split (mean weight 1 over training windows)."""
    counts = np.bincount(ws.y[ws.mask("train")], minlength=ws.num_classes)
    if (counts == 0).any():
        missing = [ws.label_names[k] for k in np.flatnonzero(counts == 0)]
        raise ValueError(f"train.class_weights: no training windows of classes {missing}")
    return torch.tensor(counts.sum() / (len(counts) * counts), dtype=torch.float32)


def teacher_cards(cfg: RunConfig) -> dict[str, RunCard]:
    """The run card of every configured teacher, checked against its config entry."""
    cards = {}
    for name, t in cfg.teachers.items():
        if t.run_dir is None:
            raise ConfigError(
                f"teachers.{name}.run_dir is not set: name a finished `harkd train` run"
            )
        cards[name] = _matches_config(name, t, read_card(t.run_dir))
    return cards


def load_teachers(cfg: RunConfig, ws: WindowSet) -> dict[str, FrozenTeacher]:
    """Frozen teachers from their run directories, each checked against its config entry and,
    by `check_compatible` (role "teacher"), against the data."""
    teachers = {}
    for name, card in teacher_cards(cfg).items():
        t = cfg.teachers[name]
        model, _ = load_run_model(t.run_dir)
        where = f"teachers.{name} ({t.run_dir})"
        channels = check_compatible(card, ws, "teacher", view=t.view, where=where)
        teachers[name] = FrozenTeacher(model, channels)
    return teachers


def _matches_config(name: str, t: TeacherConfig, card: RunCard) -> RunCard:
    where = f"teachers.{name} ({t.run_dir})"
    if card.model != t.name:
        raise ConfigError(f"{where}: the run trained {card.model!r}, the config says {t.name!r}")
    if t.params and card.params != t.params:
        raise ConfigError(f"{where}: the run used params {card.params}, the config {t.params}")
    return card
