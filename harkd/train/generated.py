"""A generative method's windows, saved with its run: `generated.npz` and `generated.png`.

The npz holds the generated windows (normalised, every channel), the class each was made for,
whether the method's filter kept it, the teacher's softmax on it, the label names and the
method's training totals (`count_<name>`: how many windows it made, how many it kept). The PNG
puts, for each class, real training windows beside generated ones on the same axes (the
student's view channels, normalised units), so a reader sees at a glance whether the generator
makes windows that look like the class.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from harkd.distill.base import GeneratedWindows  # noqa: E402
from harkd.train.rundir import RunDir, atomic_write_bytes  # noqa: E402

#: windows drawn per class and kind in the plot
PER_CLASS = 3


def save_generated(
    rd: RunDir,
    gen: GeneratedWindows,
    real_x: np.ndarray,
    real_y: np.ndarray,
    label_names: Sequence[str],
    channels: Sequence[int],
    channel_names: Sequence[str],
) -> None:
    """Write `generated.npz` and `generated.png` (module docstring) atomically."""
    buf = io.BytesIO()
    counts = {f"count_{k}": np.int64(v) for k, v in gen.counts.items()}
    np.savez(buf, x=gen.x, y=gen.y, kept=gen.kept, teacher_probs=gen.teacher_probs,
             label_names=np.asarray(label_names, dtype=str), **counts)
    atomic_write_bytes(rd.generated_npz, buf.getvalue())
    atomic_write_bytes(
        rd.generated_png, plot_generated(gen, real_x, real_y, label_names, channels, channel_names)
    )


def plot_generated(
    gen: GeneratedWindows,
    real_x: np.ndarray,
    real_y: np.ndarray,
    label_names: Sequence[str],
    channels: Sequence[int],
    channel_names: Sequence[str],
) -> bytes:
    """PNG bytes: one row per class, real windows (left) and generated ones (right), shared
    axes; up to `PER_CLASS` windows of each, one colour per channel."""
    k = len(label_names)
    fig, axes = plt.subplots(k, 2, figsize=(8, 1.4 * k + 0.6), sharex=True, sharey=True,
                             squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for c, name in enumerate(label_names):
        for col, (x, y, kind) in enumerate(((real_x, real_y, "real"), (gen.x, gen.y, "generated"))):
            ax = axes[c, col]
            for i, w in enumerate(x[y == c][:PER_CLASS]):
                for j, ch in enumerate(channels):
                    ax.plot(w[ch], color=colours[j % len(colours)], lw=0.6, alpha=0.8,
                            label=channel_names[j] if i == 0 else None)
            ax.set_title(f"{name}: {kind} ({int((y == c).sum())})", fontsize=7)
    handles, names = axes[0, 1].get_legend_handles_labels()
    if handles:
        fig.legend(handles, names, fontsize=6, loc="upper right")
    fig.supxlabel("sample", fontsize=8)
    fig.supylabel("normalised value", fontsize=8)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=100)
    plt.close(fig)
    return out.getvalue()
