"""The wheel's package list; everything else about the package is in pyproject.toml.

The repository's `configs/` folder (data protocols, run configs, grids, augmentation policies,
the quickstart) is installed as the package `harkd_configs`, which `harkd.shipped` finds at run
time. Installing a folder under another name needs a computed package list, which
pyproject.toml cannot express. tests/test_install.py checks that a wheel built from the
checkout holds every module and config in it.
"""

from setuptools import find_namespace_packages, find_packages, setup

CONFIG_PACKAGES = [
    "harkd_configs",
    *(
        f"harkd_configs.{name}"
        for name in find_namespace_packages("configs", exclude=["*__pycache__"])
    ),
]

setup(
    packages=[
        *find_packages(include=["harkd", "harkd.*", "data_prep", "data_prep.*"]),
        *CONFIG_PACKAGES,
    ],
    package_dir={"harkd_configs": "configs"},
    package_data={name: ["*.yaml"] for name in CONFIG_PACKAGES},
)
