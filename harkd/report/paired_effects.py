"""Paired effects against reference cells, Holm-adjusted within families, and per-class effects.

The input is the runs table of `harkd.report` (one row per finished run: a label per axis and
dotted metric columns). A `Reference` fixes some axes to labels, e.g. `{augment: none,
method: none}` (the student alone, without augmentation) or `{augment: none}` (the same method
without augmentation). Every other cell is compared with the reference cell that shares its
labels on the remaining axes, run by run on the seed: the differences `cell - reference` of the
runs sharing a seed are the paired sample, tested by `harkd.report.stats.paired_test` (Wilcoxon
signed-rank for n >= 6 pairs, else the paired t-test; a seeded 95 % percentile bootstrap
interval of the mean difference beside it).

Axes listed as `loose` are settings that mean nothing in the reference (what the teacher sees
when nothing is augmented): they are not matched, so the reference must hold one run per seed
on the matched axes, else a ValueError names the clash.

Holm's step-down adjustment (`stats.holm`) runs within each *family*: the cells sharing their
labels on the `family` axes (e.g. one family per method and student: "which policies help this
method"). A cell is significant where its Holm-adjusted p is below `alpha`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harkd.report.stats import holm, mean_std, paired_test

#: the metric columns holding per-class F1 (`classification_metrics`' per_class_f1, flattened)
PER_CLASS = "per_class_f1"
ALPHA = 0.05


@dataclass(frozen=True)
class Reference:
    """The cells every other cell is compared with: `fixed` axis -> label."""

    name: str
    title: str
    fixed: Mapping[str, str]

    def matches(self, runs: pd.DataFrame) -> pd.Series:
        """Which rows of `runs` are reference runs."""
        mask = pd.Series(True, index=runs.index)
        for axis, label in self.fixed.items():
            mask &= runs[axis].astype(str) == label
        return mask


def paired_effects(runs: pd.DataFrame, cells: Sequence[str], seed: str, reference: Reference,
                   metric: str, *, loose: Sequence[str] = (), family: Sequence[str] = (),
                   alpha: float = ALPHA) -> pd.DataFrame:
    """Every non-reference cell of `runs` against its reference cell, paired on `seed`.

    Columns: the `cells` axes, `family` (its labels on the family axes, joined by " / "), n,
    diff_mean, diff_std, test, statistic, p, ci_low, ci_high, p_holm, m (tests in the family)
    and significant (p_holm < alpha). Cells without a reference run sharing a seed get n = 0.
    """
    rows = []
    for key, pairs in _paired_cells(runs, cells, seed, reference, loose, [metric]):
        result = paired_test((pairs[metric] - pairs[f"{metric}_ref"]).to_numpy())
        rows.append({**key, "family": _family_label(key, family), **result.to_dict()})
    out = pd.DataFrame(rows, columns=[*cells, "family", "n", "diff_mean", "diff_std", "test",
                                      "statistic", "p", "ci_low", "ci_high"])
    out["p_holm"] = np.nan
    out["m"] = 0
    for _, idx in out.groupby("family", sort=False).groups.items():
        out.loc[idx, "p_holm"] = holm(out.loc[idx, "p"].to_numpy(dtype=float))
        out.loc[idx, "m"] = int(np.isfinite(out.loc[idx, "p"].to_numpy(dtype=float)).sum())
    out["significant"] = out["p_holm"] < alpha
    return out


def per_class_effects(runs: pd.DataFrame, cells: Sequence[str], seed: str,
                      reference: Reference, effects: pd.DataFrame, *, top: int = 5,
                      loose: Sequence[str] = (), split: str = "test") -> pd.DataFrame:
    """Per-class F1 differences (paired on seed, mean ± std) of the `top` cells of `effects`
    (by mean difference) against the reference, on `split` (a metrics key: `test`, or
    `test_last` for the weights after the last epoch). Columns: the `cells` axes, class, n,
    diff_mean, diff_std. Empty when the runs carry no per-class F1."""
    prefix = f"{split}.{PER_CLASS}."
    classes = [c for c in runs.columns if c.startswith(prefix)]
    columns = [*cells, "class", "n", "diff_mean", "diff_std"]
    if not classes or effects.empty:
        return pd.DataFrame(columns=columns)
    best = effects[effects["n"] > 0].nlargest(top, "diff_mean")
    wanted = {tuple(str(r[a]) for a in cells) for _, r in best.iterrows()}
    order = {tuple(str(r[a]) for a in cells): i for i, (_, r) in enumerate(best.iterrows())}
    rows = []
    for key, pairs in _paired_cells(runs, cells, seed, reference, loose, classes):
        label = tuple(key[a] for a in cells)
        if label not in wanted:
            continue
        for c in classes:
            stat = mean_std((pairs[c] - pairs[f"{c}_ref"]).to_numpy(dtype=float))
            rows.append({**key, "class": c[len(prefix):], "n": stat.n,
                         "diff_mean": stat.mean, "diff_std": stat.std, "_rank": order[label]})
    out = pd.DataFrame(rows, columns=[*columns, "_rank"])
    return out.sort_values("_rank", kind="stable").drop(columns="_rank").reset_index(drop=True)


def _paired_cells(runs: pd.DataFrame, cells: Sequence[str], seed: str, reference: Reference,
                  loose: Sequence[str], values: Sequence[str],
                  ) -> Iterator[tuple[dict[str, str], pd.DataFrame]]:
    """(cell labels, its runs merged with the reference runs on the matched axes and seed:
    `values` and `<value>_ref` columns) for every non-reference cell."""
    missing = [c for c in [*cells, seed, *reference.fixed, *values] if c not in runs]
    if missing:
        raise ValueError(f"the runs table lacks column(s) {missing} (reference "
                         f"{reference.name!r}); it has {list(runs.columns)}")
    keys = [a for a in cells if a not in reference.fixed and a not in loose]
    table = runs.assign(**{a: runs[a].astype(str) for a in [*cells, seed]})
    is_ref = reference.matches(table)
    base = table[is_ref][[*keys, seed, *values]]
    clash = base.duplicated([*keys, seed], keep=False)
    if clash.any():
        shown = base[clash][[*keys, seed]].head(2).to_dict("records")
        raise ValueError(f"reference {reference.name!r}: {int(clash.sum())} runs share their "
                         f"labels on {[*keys, seed]} (e.g. {shown}); an axis listed as loose "
                         f"{list(loose)} varies among the reference runs")
    for key, part in table[~is_ref].groupby(list(cells), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        pairs = part[[*keys, seed, *values]].merge(base, on=[*keys, seed], suffixes=("", "_ref"))
        # in seed order, so the seeded bootstrap does not depend on the order of the table's rows
        pairs = pairs.sort_values(seed, key=_seed_order, kind="stable")
        yield dict(zip(cells, key, strict=True)), pairs


def _seed_order(labels: pd.Series) -> pd.Series:
    """Seed labels as numbers where they are numbers (so "10" follows "9")."""
    numbers = pd.to_numeric(labels, errors="coerce")
    return numbers if numbers.notna().all() else labels


def _family_label(key: Mapping[str, str], family: Sequence[str]) -> str:
    return " / ".join(str(key[a]) for a in family) if family else "all"
