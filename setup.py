"""Installation script for sdm_sklearn."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(
    r'^__version__ = "([^"]+)"',
    (HERE / "sdm_sklearn" / "_version.py").read_text(),
    re.M,
).group(1)

EXTRAS = {
    "approximate": ["pynndescent>=0.5.13"],
    "faiss": ["faiss-cpu>=1.8"],
    "plotting": ["matplotlib>=3.7"],
    "io": ["pyarrow>=14"],
    "persistence": ["skops>=0.10"],
    "distributed": ["dask[array,dataframe]>=2024.1", "distributed>=2024.1"],
}
EXTRAS["test"] = sorted(
    set(
        EXTRAS["approximate"]
        + EXTRAS["faiss"]
        + EXTRAS["plotting"]
        + EXTRAS["io"]
        + EXTRAS["persistence"]
        + EXTRAS["distributed"]
        + ["pytest>=7.4", "pytest-timeout>=2.1", "hypothesis>=6.80",
           "ruff>=0.4"]
    )
)
EXTRAS["docs"] = sorted(
    set(
        EXTRAS["plotting"]
        + [
            "sphinx>=7",
            "numpydoc>=1.6",
            "sphinx-gallery>=0.15",
            "pydata-sphinx-theme>=0.15",
        ]
    )
)
EXTRAS["all"] = sorted({dep for deps in EXTRAS.values() for dep in deps})

setup(
    name="sdm_sklearn",
    version=VERSION,
    description=(
        "Similarity-Distance-Magnitude activations and selective "
        "classification for scikit-learn"
    ),
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="BSD-3-Clause",
    packages=find_packages(include=["sdm_sklearn", "sdm_sklearn.*"]),
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.24",
        "scipy>=1.10",
        "scikit-learn>=1.6",
        "numba>=0.58",
        "pandas>=2.0",
        "threadpoolctl>=3.1",
        "joblib>=1.2",
    ],
    extras_require=EXTRAS,
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "License :: OSI Approved :: BSD License",
    ],
)
