"""Does a finished run's model fit a WindowSet? The one check every command and teacher uses.

`check_compatible(card, ws, role)` compares the run card with the data:
- view: the card's channel groups exist in the data and name the same channels (and equal the
  expected `view` when one is given, e.g. a teacher's view in the config);
- classes: the same label names in the same order;
- window: the same number of samples per window; rate: the same sampling rate;
- normalisation (role "teacher"): a teacher is fed windows standardised with the data's
  training-split statistics, so those must be the ones it was trained with;
- test subjects: no test subject of the data was among the run's training, validation or pool
  subjects (its scores or its teaching would not be held out).
Every problem found is reported in one line, each prefixed with the field it concerns.

`check_runnable(configs)` checks, before any data is prepared, what a run config names: the
model and teacher architectures, the method with its parameters and teachers, the augmentation
policy and the data protocol. `harkd train` / `distill` and the grid engine (a dry run included)
call it, so a config the real run would refuse is refused before anything runs.
`check_trainable(ws)` refuses training data that leaves a class without a training window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

from data_prep.windowset import WindowSet
from harkd.config import ConfigError, RunConfig
from harkd.train.runcard import RunCard

#: what the run is for: distilling from it, scoring it, exporting it
Role = Literal["teacher", "evaluate", "export"]
ROLES: tuple[Role, ...] = ("teacher", "evaluate", "export")
#: relative tolerance on the training-split statistics of a teacher's channels
NORM_RTOL = 1e-4


class IncompatibleRunError(ConfigError):
    """A run whose model does not fit the data (the message names each field)."""


def check_compatible(
    card: RunCard,
    ws: WindowSet,
    role: Role,
    view: Sequence[str] | None = None,
    where: str = "the run",
) -> list[int]:
    """The data's channel indices of the card's view; `IncompatibleRunError` when it does not fit.

    Args:
        card: the run's card.
        ws: the data it is to be used on.
        role: "teacher" also requires the same normalisation statistics.
        view: the view the caller expects the run to have (e.g. `teachers.<name>.view`).
        where: how the message names the run (e.g. "teachers.cnn1d (runs/teacher)").
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    problems: list[str] = []
    channels = _view_channels(card, ws, view, problems)
    if ws.label_names != card.label_names:
        problems.append(
            f"classes: the data has {ws.label_names}, the model was trained on {card.label_names} "
            "(the same names in the same order are needed)"
        )
    window = int(ws.X.shape[-1])
    if window != card.window:
        problems.append(
            f"window: the data's windows have {window} samples, the model's {card.window}"
        )
    rate = ws.meta.get("rate_hz")
    if rate is None or not math.isclose(float(rate), card.rate_hz, rel_tol=1e-9):
        problems.append(f"rate: the data is sampled at {rate} Hz, the model at {card.rate_hz:g} Hz")
    if role == "teacher" and channels is not None:
        problems += _normalisation(card, ws, channels)
    test = {str(s) for s in ws.meta["split_subjects"]["test"]}
    leaked = sorted(test & card.split_subjects.seen(), key=_subject_order)
    if leaked:
        problems.append(
            f"test subjects: {leaked} of the data's test split were among the run's training/"
            "validation subjects; use a run trained on the same split"
        )
    if problems:
        name = ws.meta.get("name", "the data")
        raise IncompatibleRunError(f"{where} does not fit {name}: " + "; ".join(problems))
    return channels or []


def _view_channels(
    card: RunCard, ws: WindowSet, view: Sequence[str] | None, problems: list[str]
) -> list[int] | None:
    """The data's channels of the card's view, or None (with the problem noted)."""
    if view is not None and list(view) != card.view:
        problems.append(f"view: the model reads {card.view}, the config says {list(view)}")
    missing = [g for g in card.view if g not in ws.groups]
    if missing:
        problems.append(
            f"view: channel group(s) {missing} of the model's view {card.view} are not in the "
            f"data (it has {sorted(ws.groups)})"
        )
        return None
    channels = ws.channel_indices(card.view)
    names = [ws.channels[i] for i in channels]
    if names != card.channels:
        problems.append(
            f"view: the data's {card.view} channels are {names}, the model's {card.channels}"
        )
        return None
    return channels


def _normalisation(card: RunCard, ws: WindowSet, channels: list[int]) -> list[str]:
    norm = ws.meta["norm"]
    mean = np.asarray([norm["mean"][i] for i in channels], dtype=float)
    std = np.asarray([norm["std"][i] for i in channels], dtype=float)
    ok = np.allclose(mean, card.norm.mean, rtol=NORM_RTOL, atol=NORM_RTOL * std) and np.allclose(
        std, card.norm.std, rtol=NORM_RTOL
    )
    if ok:
        return []
    gap = np.abs(mean - card.norm.mean) / std + np.abs(np.log(std / np.asarray(card.norm.std)))
    worst = int(np.argmax(gap))
    return [
        f"normalisation: the data's training-split statistics differ from the teacher's (channel "
        f"{card.channels[worst]}: mean {mean[worst]:.4g} vs {card.norm.mean[worst]:.4g}, std "
        f"{std[worst]:.4g} vs {card.norm.std[worst]:.4g}); train the teacher on the same "
        "training subjects"
    ]


def _subject_order(s: str) -> tuple[int, int | str]:
    return (0, int(s)) if s.isdigit() else (1, s)


def check_runnable(configs: Sequence[RunConfig], source: str | None = None) -> None:
    """Refuse, naming the config and field, anything in `configs` the real run would refuse
    before it trains: an unknown model or teacher architecture, an unknown method or bad
    `distill.params` or teacher count, an unknown augmentation policy, a data protocol that
    does not load. Each policy file and data protocol is read once; `source` (a grid spec)
    prefixes the message with the file the configs come from."""
    from harkd.augment.policies import load_policies
    from harkd.data import data_config
    from harkd.models import list_models
    from harkd.train.assemble import check_method  # assemble imports this module

    models = list_models()
    policies: set[str] | None = None
    protocols: set[str] = set()
    for cfg in configs:
        where = f"{source} (run {cfg.name}): " if source else f"{cfg.name}: "
        for field, name in [("model.name", cfg.model.name)] + [
            (f"teachers.{k}.name", t.name) for k, t in cfg.teachers.items()
        ]:
            if name not in models:
                raise ConfigError(
                    f"{where}{field}: unknown model {name!r}; known: {sorted(models)}"
                )
        try:
            check_method(cfg)
        except ConfigError as err:
            raise ConfigError(f"{where}{err.args[0]}") from None
        if cfg.augment.policy != "none":
            policies = set(load_policies()) if policies is None else policies
            unknown = [p.strip() for p in cfg.augment.policy.split("+")
                       if p.strip() not in policies]  # fmt: skip
            if unknown:
                raise ConfigError(f"{where}augment.policy: unknown policy {unknown} in "
                                  f"{cfg.augment.policy!r}; known: {sorted(policies)}")
        protocol = f"{cfg.data}|{sorted(cfg.data_overrides.items())}"
        if protocol not in protocols:
            data_config(cfg)
            protocols.add(protocol)


def check_trainable(ws: WindowSet) -> None:
    """Refuse training data where a class has no training window: the model could never
    predict it, and its macro-F1 would average in a class it was never shown."""
    counts = np.bincount(ws.y[ws.mask("train")], minlength=ws.num_classes)
    missing = [ws.label_names[k] for k in np.flatnonzero(counts == 0)]
    if missing:
        subjects = ws.meta.get("split_subjects", {}).get("train", [])
        raise ConfigError(
            f"split: class(es) {missing} of {ws.meta.get('name', 'the data')} have no training "
            f"windows (training subjects {subjects}); choose training subjects that perform "
            "every class, or leave the class out of the protocol"
        )
