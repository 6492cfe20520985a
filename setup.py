"""Installation script for sdm_sklearn.

The metadata, the dependencies and the extras are in ``pyproject.toml``
(PEP 621); this file is kept only because the project layout requires it.
"""

from setuptools import setup

setup()
