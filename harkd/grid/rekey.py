"""Finding the runs a store holds under an earlier key of the same run.

A grid row is keyed by its config's hash. Stores written before the data protocol entered
that hash by its content keyed every row with the protocol's absolute path, so the same spec
run from another checkout or folder (or with this harkd) found none of its finished runs. This
module matches each run of an expansion to a stored row of the same run under another key:

- the same kind (cell or node) and the same axis labels;
- the same config once the data protocol's path and the teachers' node hashes are set aside;
- the same data protocol: equal content (`data_protocol_digest`) when the stored path still
  exists, else the same file name;
- the same needed nodes, each already matched (nodes are matched before what needs them, and
  the store remembers earlier matches, so a later profile's cells find their nodes).

The store then re-keys the row (`RunStore.adopt`): its hash, needed nodes and config become
the expansion's, and its run folder is renamed (the old name stays as a link).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harkd.config import data_protocol_digest
from harkd.grid.spec import GridRun


def portable(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` without what differs between two keys of one run: the data protocol's path
    and the hashes of the training nodes its teachers come from."""
    out = copy.deepcopy(dict(config))
    out.pop("data", None)
    for teacher in (out.get("teachers") or {}).values():
        if isinstance(teacher, dict):
            teacher.pop("node", None)
    return out


def same_protocol(stored: str, current: str) -> bool:
    """Whether a stored row's data protocol path names the protocol `current` names."""
    if Path(stored).is_file():
        return data_protocol_digest(stored) == data_protocol_digest(current)
    return Path(stored).name == Path(current).name


def earlier_keys(
    runs: Sequence[GridRun], stored: Iterable[Mapping[str, Any]], known: Mapping[str, str],
) -> dict[str, str]:
    """{new hash: stored hash} for each run of `runs` (nodes before what needs them) not
    stored under its own hash but under an earlier key. `stored`: the store's rows as mappings
    with `hash`, `kind`, `axes`, `deps` and `config`; `known`: earlier matches, old -> new."""
    rows = list(stored)
    taken = {r["hash"] for r in rows}
    renamed = dict(known)
    found: dict[str, str] = {}
    matched: set[str] = set()
    by_shape: dict[tuple[str, tuple[tuple[str, str], ...]], list[Mapping[str, Any]]] = {}
    for r in rows:
        by_shape.setdefault((r["kind"], tuple(sorted(r["axes"].items()))), []).append(r)
    current = {r.hash for r in runs}
    for run in runs:
        if run.hash in taken:
            continue
        config = run.config.model_dump(mode="json")
        for row in by_shape.get((run.kind, tuple(sorted(run.axes.items()))), []):
            if row["hash"] in current or row["hash"] in matched:
                continue
            if [renamed.get(d, d) for d in row["deps"]] != list(run.deps):
                continue
            if portable(row["config"]) != portable(config):
                continue
            if not same_protocol(str(row["config"].get("data", "")), run.config.data):
                continue
            found[run.hash] = row["hash"]
            matched.add(row["hash"])
            renamed[row["hash"]] = run.hash
            break
    return found
