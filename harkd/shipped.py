"""The configs harkd ships, and the one lookup that turns a config argument into a file.

The repository's `configs/` folder (data protocols, run configs, grids, augmentation policies,
the quickstart) is installed with the package as `harkd_configs`, so `harkd demo` and
`harkd train configs/train/student_tiny.yaml` work from any directory, in any install.
"""

from __future__ import annotations

from pathlib import Path

import harkd_configs

from data_prep.configio import ConfigError

#: the folder of the shipped configs (the repository's configs/ in an editable install)
SHIPPED_CONFIGS = Path(harkd_configs.__file__).resolve().parent
#: how a config argument names a shipped file: `configs/...`, as in the README and the configs
SHIPPED_PREFIX = "configs"


def config_file(path: str | Path) -> Path:
    """The file a config argument names.

    An existing path (relative to the working directory) wins. Otherwise a relative path
    `configs/<rest>`, or a bare `<rest>` such as `quickstart.yaml` or `train/tinyhar.yaml`,
    names the shipped copy of `<rest>`. Anything else is a `ConfigError` naming the path and
    both places looked in.
    """
    given = Path(path).expanduser()
    if given.exists():
        return given
    if not given.is_absolute():
        parts = given.parts
        rest = Path(*parts[1:]) if parts[0] == SHIPPED_PREFIX and len(parts) > 1 else given
        if (SHIPPED_CONFIGS / rest).is_file():
            return SHIPPED_CONFIGS / rest
    raise ConfigError(
        f"{path}: config file not found (looked in {Path.cwd()} and, for a relative path, "
        f"among the shipped configs in {SHIPPED_CONFIGS})"
    )
