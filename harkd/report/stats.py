"""Seed statistics: means ± std over seeds and paired per-seed comparisons with a baseline.

`mean_std` and `format_mean_std` are harkd's one way to summarise and print repeated runs
(the report, the quickstart and the benchmarks use them). `TEST_RULE` states which paired
test is used when; the report quotes it. `holm` adjusts the p-values of a family of such
tests for multiplicity.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

WILCOXON_MIN_N = 6
TEST_RULE = """\
Every figure is a mean ± sample standard deviation (ddof=1) over seeds. A cell is compared
with its baseline cell (same values on every other axis) seed by seed: the differences
`cell - baseline` of runs sharing a seed are the paired sample (Δ, mean ± std, n pairs). The
test on them is

- Wilcoxon signed-rank (two-sided, exact for small n; `scipy.stats.wilcoxon`) when n >= 6:
  it assumes no distribution, and below 6 pairs its smallest possible two-sided p-value is
  2/2^n >= 0.0625, so it could never reject at 5%;
- the paired t-test (two-sided; `scipy.stats.ttest_1samp` of the differences against 0, which
  is `ttest_rel`) when 2 <= n < 6, which assumes roughly normal differences;
- none when n < 2, or when every difference is identical (no spread to test against).

Beside the test, a 95 % percentile bootstrap interval of the mean difference (10,000
resamples of the pairs, seeded, so the same pairs always give the same interval); a lift is
read as real only where this interval excludes 0.
"""
BOOTSTRAP_RESAMPLES = 10_000


@dataclass(frozen=True)
class PairedTest:
    n: int
    diff_mean: float
    diff_std: float
    test: str
    statistic: float
    p: float
    ci_low: float = math.nan
    ci_high: float = math.nan

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


class MeanStd(NamedTuple):
    """Mean, sample standard deviation (ddof=1; NaN when n < 2) and number of values."""

    mean: float
    std: float
    n: int

    def to_dict(self) -> dict[str, float | int | None]:
        """For JSON: an undefined mean or std (NaN) becomes null."""
        return {"mean": _or_none(self.mean), "std": _or_none(self.std), "n": self.n}


def _or_none(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def mean_std(values: np.ndarray | pd.Series | list[float]) -> MeanStd:
    """Mean, sample std and count of the finite values (NaN marks a missing value; n counts
    only the values used)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return MeanStd(math.nan, math.nan, 0)
    return MeanStd(float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan, int(v.size))


def format_mean_std(stat: MeanStd, digits: int = 3, signed: bool = False) -> str:
    """`0.912 ± 0.004` over n >= 2 values; `0.912 (n = 1)` for one value, which has no spread
    (never `± 0`); an empty string for none. `signed` writes the mean with its sign (`+0.012`),
    for differences. The std may be None (a `MeanStd` read back from JSON)."""
    if stat.n == 0:
        return ""
    mean = f"{stat.mean:{'+' if signed else ''}.{digits}f}"
    if stat.n == 1:
        return f"{mean} (n = 1)"
    return f"{mean} ± {stat.std:.{digits}f}"


def paired_test(diffs: np.ndarray | list[float]) -> PairedTest:
    """Test whether paired differences centre on zero (see the module docstring for which)."""
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    mean, std, n = mean_std(d)
    if n < 2:
        return PairedTest(n, mean, std, "none (n < 2)", math.nan, math.nan)
    low, high = bootstrap_ci(d)
    if np.allclose(d, d[0], rtol=0, atol=1e-12):
        return PairedTest(n, mean, std, "none (identical differences)", math.nan, math.nan,
                          low, high)
    if n >= WILCOXON_MIN_N:
        res = stats.wilcoxon(d, alternative="two-sided")
        return PairedTest(n, mean, std, "wilcoxon", float(res.statistic), float(res.pvalue),
                          low, high)
    res = stats.ttest_1samp(d, 0.0, alternative="two-sided")
    return PairedTest(n, mean, std, "paired t", float(res.statistic), float(res.pvalue),
                      low, high)


def holm(pvalues: np.ndarray | pd.Series | list[float]) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (Holm 1979), in the input order.

    The i-th smallest of the m p-values becomes `max_{j <= i} min(1, (m - j + 1) p_(j))`;
    rejecting where the adjusted value is below α keeps the family-wise error rate at α. NaN
    marks a comparison without a test: it stays NaN and does not count in m.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, math.nan)
    tested = np.flatnonzero(np.isfinite(p))
    m = tested.size
    if m == 0:
        return out
    order = tested[np.argsort(p[tested], kind="stable")]
    steps = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(steps)
    return out


def bootstrap_ci(values: np.ndarray | list[float], level: float = 0.95,
                 resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (resampled with replacement)."""
    v = np.asarray(values, dtype=float)
    if v.size < 2:
        return math.nan, math.nan
    idx = np.random.default_rng(seed).integers(0, v.size, size=(resamples, v.size))
    means = v[idx].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def seed_means(df: pd.DataFrame, by: list[str], seed: str | None, metric: str) -> pd.DataFrame:
    """Per value of the `by` axes: mean ± std over seeds of the per-seed mean over the other
    axes (without a seed axis, the spread is over runs). Columns: *by, mean, std, n."""
    rows = []
    for key, part in df.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        per = part.groupby(seed)[metric].mean() if seed else part[metric]
        m, s, n = mean_std(per)
        rows.append({**dict(zip(by, key, strict=True)), "mean": m, "std": s, "n": n})
    return pd.DataFrame(rows, columns=[*by, "mean", "std", "n"])


def cell_summary(df: pd.DataFrame, cells: list[str], metrics: list[str]) -> pd.DataFrame:
    """One row per cell (combination of `cells` axes): n (runs) and the mean, std and n
    (finite values) of each metric, as columns `<metric>_mean`, `<metric>_std`, `<metric>_n`."""
    rows = []
    for key, part in df.groupby(cells, sort=False) if cells else [((), df)]:
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(cells, key, strict=True))
        row["n"] = len(part)
        for m in metrics:
            row[f"{m}_mean"], row[f"{m}_std"], row[f"{m}_n"] = mean_std(part[m])
        rows.append(row)
    return pd.DataFrame(rows)


def baseline_comparisons(df: pd.DataFrame, cells: list[str], seed: str | None, axis: str,
                         baseline: str, metric: str) -> pd.DataFrame:
    """Every cell with `axis` != `baseline` against the cell with `axis` == `baseline` and the
    same other values, paired on seed. Columns: the cell axes, baseline, n, diff_mean, diff_std,
    test, statistic, p (empty when the baseline value is not in the grid)."""
    if baseline not in set(df[axis]):
        return pd.DataFrame()
    others = [c for c in cells if c != axis]
    keys = others + ([seed] if seed else [])
    base = df[df[axis] == baseline][[*keys, metric]]
    rows = []
    for key, part in df[df[axis] != baseline].groupby([axis, *others], sort=False):
        key = key if isinstance(key, tuple) else (key,)
        how = {"on": keys} if keys else {"how": "cross"}
        paired = part[[*keys, metric]].merge(base, suffixes=("", "_base"), **how)
        result = paired_test((paired[metric] - paired[f"{metric}_base"]).to_numpy())
        rows.append({**dict(zip([axis, *others], key, strict=True)), "baseline": baseline,
                     **result.to_dict()})
    return pd.DataFrame(rows)
