"""`harkd augment --list` and `harkd augment --show NAME --data CONFIG [key=value ...]`.

`--list` prints every augmentation policy with its ops and all their parameters. `--show`
prepares (or loads from the cache) the data protocol, draws `--n` windows of a split, applies
the policy exactly as training does (per-channel standardised windows, the split's `norm`
given to the policy) and writes a PNG: one row per window, one column per channel group,
the original dashed and the augmented solid, in raw units.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import torch

from data_prep.windowset import SPLITS, WindowSet
from harkd.commands.options import positive_int
from harkd.config import ConfigError
from harkd.shipped import config_file
from harkd.train.rundir import atomic_write_bytes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--list", action="store_true", help="list the policies and their parameters")
    mode.add_argument(
        "--show", metavar="NAME", help="plot policy NAME ('a+b' composes) on real windows"
    )
    parser.add_argument("--data", help="data protocol YAML for --show (configs/data/*.yaml)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the data protocol")
    parser.add_argument(
        "--out", type=Path, default=None, help="PNG path (default augment-NAME.png)"
    )
    parser.add_argument("--n", type=positive_int, default=4,
                        help="number of windows to plot (default 4)")
    parser.add_argument("--split", choices=SPLITS, default="train", help="split to draw from")
    parser.add_argument("--seed", type=int, default=0, help="seed of the window choice and policy")
    parser.add_argument(
        "--policies",
        type=Path,
        default=None,
        help="policy YAML (default configs/augment/policies.yaml)",
    )
    parser.add_argument("--cache-dir", type=Path, default=None, help="WindowSet cache folder")


def run(args: argparse.Namespace) -> int:
    from harkd.augment import list_policies

    policies = None if args.policies is None else config_file(args.policies)
    if args.list:
        print(format_policies(list_policies(policies)))
        return 0
    if args.data is None:
        raise ConfigError("--data: --show needs a data protocol YAML (configs/data/*.yaml)")
    from data_prep.config import load_data_config
    from data_prep.pipeline import prepare

    cfg = load_data_config(config_file(args.data), args.overrides)
    ws = prepare(cfg, cache_dir=args.cache_dir, progress=False)
    out = args.out or Path(f"augment-{args.show.replace('+', '_')}.png")
    path = show(ws, args.show, out, n=args.n, split=args.split, seed=args.seed, policies=policies)
    print(f"wrote {path}")
    return 0


def format_policies(policies: dict[str, list[dict]]) -> str:
    """One block per policy: its name, then one line per op with its parameters."""
    lines = []
    for name, ops in policies.items():
        lines.append(f"{name}" + ("  (identity)" if not ops else ""))
        for op in ops:
            params = ", ".join(f"{k}={v}" for k, v in op.items() if k != "op")
            lines.append(f"    {op['op']}({params})")
    return "\n".join(lines)


def show(
    ws: WindowSet,
    policy_name: str,
    out: Path,
    n: int = 4,
    split: str = "train",
    seed: int = 0,
    policies: Path | None = None,
) -> Path:
    """Write a PNG of `n` windows of `split` before and after the policy; return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harkd.augment import build_policy

    sub = ws.subset(split)
    if len(sub) == 0:
        raise ValueError(f"split {split!r} of {ws.meta.get('name', 'the data')} has no windows")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(sub), size=min(n, len(sub)), replace=False))
    mean = np.asarray(ws.meta["norm"]["mean"], dtype=np.float32)[:, None]
    std = np.asarray(ws.meta["norm"]["std"], dtype=np.float32)[:, None]
    x = torch.from_numpy((sub.X[pick] - mean) / std)
    y = torch.nn.functional.one_hot(torch.from_numpy(sub.y[pick]), ws.num_classes).float()
    try:
        policy = build_policy(policy_name, ws.groups, norm=ws.meta["norm"], path=policies)
    except KeyError as err:
        raise ConfigError(f"--show: {err.args[0]}") from None
    x_aug, y_aug = policy(x, y, torch.Generator().manual_seed(seed))
    before, after = sub.X[pick], x_aug.numpy() * std + mean

    groups = ws.groups
    fig, axes = plt.subplots(
        len(pick), len(groups), figsize=(4.5 * len(groups), 2.2 * len(pick)), squeeze=False
    )
    t = np.arange(before.shape[-1]) / float(ws.meta["rate_hz"])
    for row, i in enumerate(range(len(pick))):
        label = _label_text(y_aug[i].numpy(), ws.label_names)
        for col, (group, idx) in enumerate(groups.items()):
            ax = axes[row, col]
            for k, c in enumerate(idx):
                colour = f"C{k}"
                ax.plot(t, before[i, c], color=colour, lw=0.8, ls="--", alpha=0.6)
                ax.plot(t, after[i, c], color=colour, lw=1.0, label=ws.channels[c])
            ax.set_title(f"{group} - {label}", fontsize=8)
            if row == len(pick) - 1:
                ax.set_xlabel("time (s)")
            if row == 0:
                ax.legend(fontsize=6, loc="upper right")
    fig.suptitle(f"policy {policy_name!r} on {split} windows (dashed: original)", fontsize=10)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, png.getvalue())
    return out


def _label_text(y_soft: np.ndarray, names: list[str]) -> str:
    """'WALKING' for a one-hot label, '0.7 WALKING + 0.3 SITTING' for a mixed one."""
    order = np.argsort(-y_soft)
    parts = [(y_soft[k], names[k]) for k in order if y_soft[k] > 1e-3]
    if len(parts) == 1:
        return parts[0][1]
    return " + ".join(f"{w:.2f} {name}" for w, name in parts)
