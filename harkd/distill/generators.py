"""Generative modules of the data-free and GAN-based methods (`cudfkd`, `cgankd`).

- `WindowGenerator`: noise (and, when conditional, a class) to a normalised window [B, C, T]:
  a linear map to a [width, T/4] map, two (upsample x2, conv, BN, ReLU) blocks and a final
  convolution to C channels (the 1-D form of the DCGAN/SNGAN generators used in data-free KD
  and in cGAN-KD; the class enters as a learned embedding concatenated with the noise).
- `ProjectionDiscriminator`: Miyato & Koyama, "cGANs with Projection Discriminator" (ICLR
  2018): spectrally normalised convolutions to a pooled feature phi(x), and
  D(x, y) = psi(phi(x)) + <embed(y), phi(x)>; trained with the hinge loss (`hinge_d`, `hinge_g`).
- `BNStatistics`: the BatchNorm statistics prior of DeepInversion (Yin et al., CVPR 2020), which
  data-free KD uses to keep generated inputs near the teacher's training distribution: for each
  BatchNorm layer, ||mu_batch - running_mean||_2 + ||var_batch - running_var||_2, summed.
- `frozen(module)`: a forward in which `module`'s parameters receive no gradient (the other
  player's step of an adversarial game).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class WindowGenerator(nn.Module):
    """z [B, noise_dim] (and labels y [B] when `num_classes` is set) -> windows [B, C, T]."""

    def __init__(
        self, noise_dim: int, channels: int, window: int, width: int = 64,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        self.noise_dim, self.window = noise_dim, window
        self.base = -(-window // 4)  # ceil: two x2 upsamplings reach at least `window`
        self.embed = nn.Embedding(num_classes, noise_dim) if num_classes else None
        in_dim = noise_dim * (2 if num_classes else 1)
        self.fc = nn.Linear(in_dim, width * self.base)
        self.width = width
        self.blocks = nn.Sequential(
            nn.BatchNorm1d(width),
            *self._up(width, width),
            *self._up(width, width // 2),
            nn.Conv1d(width // 2, channels, kernel_size=5, padding=2),
        )

    @staticmethod
    def _up(cin: int, cout: int) -> list[nn.Module]:
        return [
            nn.Upsample(scale_factor=2),
            nn.Conv1d(cin, cout, kernel_size=5, padding=2, bias=False),
            nn.BatchNorm1d(cout),
            nn.ReLU(),
        ]

    def sample(
        self, n: int, device: torch.device, rng: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """n windows from fresh noise, with their classes (uniform; None when unconditional):
        drawn from `rng` (a CPU generator: a fixed draw) or else torch's RNG on `device`."""
        shape = (n, self.noise_dim)
        y = None
        if rng is None:
            z = torch.randn(shape, device=device)
            if self.embed is not None:
                y = torch.randint(self.embed.num_embeddings, (n,), device=device)
        else:
            z = torch.randn(shape, generator=rng).to(device)
            if self.embed is not None:
                y = torch.randint(self.embed.num_embeddings, (n,), generator=rng).to(device)
        return self(z, y), y

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            if y is None:
                raise ValueError("a conditional generator needs the class of each window")
            z = torch.cat([z, self.embed(y)], dim=1)
        h = self.fc(z).view(len(z), self.width, self.base)
        return self.blocks(h)[..., : self.window]


def full_channels(groups: Mapping[str, Sequence[int]]) -> int:
    """How many channels a full window has (every group's indices lie below it)."""
    return 1 + max(c for indices in groups.values() for c in indices)


class ProjectionDiscriminator(nn.Module):
    """D(x, y) = psi(phi(x)) + <embed(y), phi(x)> on windows [B, C, T] (Miyato & Koyama 2018)."""

    def __init__(self, channels: int, num_classes: int, width: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = channels
        for cout, stride in ((width // 2, 1), (width, 2), (width, 2)):
            layers += [spectral_norm(nn.Conv1d(cin, cout, 5, stride, padding=2)), nn.LeakyReLU(0.1)]
            cin = cout
        self.phi = nn.Sequential(*layers)
        self.psi = spectral_norm(nn.Linear(width, 1))
        self.embed = spectral_norm(nn.Embedding(num_classes, width))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One score per window [B]."""
        h = self.phi(x).sum(dim=2)  # global sum pooling
        return self.psi(h).squeeze(1) + (self.embed(y) * h).sum(dim=1)


def hinge_d(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The discriminator's hinge loss: mean relu(1 - D(real)) + mean relu(1 + D(fake))."""
    return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()


def hinge_g(fake_scores: torch.Tensor) -> torch.Tensor:
    """The generator's hinge loss: -mean D(fake)."""
    return -fake_scores.mean()


class BNStatistics:
    """Collects DeepInversion's BatchNorm prior from every BatchNorm1d of a model while active.

    Use as a context manager around a forward pass of the (eval-mode) model; `loss` is then
    sum_l ||mean(a_l) - running_mean_l||_2 + ||var(a_l) - running_var_l||_2 over the inputs a_l
    of its BatchNorm layers (mean and biased variance over the batch and time).
    """

    def __init__(self, model: nn.Module) -> None:
        self.layers = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
        if not self.layers:
            raise ValueError("the BatchNorm prior needs a model with BatchNorm1d layers")
        self.terms: list[torch.Tensor] = []
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def _hook(self, module: nn.BatchNorm1d, inputs: tuple[torch.Tensor, ...]) -> None:
        a = inputs[0].float()
        dims = [0, 2] if a.dim() == 3 else [0]
        mean, var = a.mean(dim=dims), a.var(dim=dims, unbiased=False)
        self.terms.append(
            torch.linalg.vector_norm(mean - module.running_mean)
            + torch.linalg.vector_norm(var - module.running_var)
        )

    def __enter__(self) -> BNStatistics:
        self.terms = []
        self._handles = [m.register_forward_pre_hook(self._hook) for m in self.layers]
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    @property
    def loss(self) -> torch.Tensor:
        return torch.stack(self.terms).sum()


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """Within the block, `module`'s parameters do not require gradients (a forward through it
    passes gradients to its input only); their previous flags are restored after."""
    params = list(module.parameters())
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)
