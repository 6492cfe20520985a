"""Sphinx configuration of the sdm_sklearn documentation.

Build the HTML pages from the repository root with::

    python -m sphinx -b html doc doc/_build/html
"""

import re
import sys
from pathlib import Path

import sdm_sklearn

sys.path.insert(0, str(Path(__file__).parent / "sphinxext"))

project = "sdm_sklearn"
author = "sdm_sklearn developers"
copyright = "sdm_sklearn developers"
release = sdm_sklearn.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "matplotlib.sphinxext.plot_directive",
]

templates_path = ["_templates"]
exclude_patterns = ["_build"]
default_role = "literal"

# API pages: one generated page per public object.
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# Gallery: the scripts of ../examples, run at build time. No file is
# written outside the build tree; figures are captured from matplotlib.
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "gallery_order.example_order",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
}

# Figures of ``.. plot::`` directives in the user guide.
plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 100)]

html_theme = "pydata_sphinx_theme"
html_title = f"sdm_sklearn {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path = []


def skip_metadata_request_methods(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated ``set_{method}_request`` methods.

    scikit-learn documents them, and their docstrings refer to its glossary.
    """
    if re.fullmatch(r"set_\w+_request", name):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", skip_metadata_request_methods)
