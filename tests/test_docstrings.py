"""Every public docstring passes numpydoc's validation.

One test per public name: the functions and classes exported by the public
modules, and each class's own public methods, class methods and properties
(not those inherited from scikit-learn, nor the ``set_*_request`` methods it
generates). Skipped when numpydoc is not installed (the ``test`` and ``docs``
extras have it).
"""

import importlib
import inspect

import pytest

validate = pytest.importorskip("numpydoc.validate").validate
from numpydoc.docscrape import NumpyDocString  # noqa: E402

PUBLIC_MODULES = (
    "sdm_sklearn",
    "sdm_sklearn.metrics",
    "sdm_sklearn.plotting",
    "sdm_sklearn.monitoring",
    "sdm_sklearn.report",
    "sdm_sklearn.datasets",
    "sdm_sklearn.exceptions",
)

# Codes ignored everywhere:
# - RT02 (the first line of Returns holds only the type): a single return
#   value is named (``y_pred : ndarray``, ``self : SDMClassifier``), as in
#   scikit-learn, so that the text can refer to it.
# - SA01 (no See Also section): cross-references are made in the text and in
#   the user guide where they help; one on every name would be noise.
# - EX01 (no Examples section): the examples are the gallery (examples/) and
#   the user guide, which CI runs; doctests on every name would fit models
#   inside the test run.
IGNORED = {"RT02", "SA01", "EX01"}
# Ignored for methods and properties only (kept for the functions and the
# classes): ES01 (no extended summary); a method's summary line, parameters
# and returns, under its class's description, are enough.
IGNORED_FOR_MEMBERS = {"ES01"}
# A property without a docstring of its own (GL08) is accepted only if the
# class's Attributes section documents it: that is where the fitted
# attributes are described, and where the API reference shows them.


def _own_members(cls):
    """Public methods and properties defined in ``cls`` by this package."""
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, property):
            function = value.fget
        elif isinstance(value, (classmethod, staticmethod)):
            function = value.__func__
        elif inspect.isfunction(value):
            function = value
        else:
            continue
        if getattr(function, "__module__", "").startswith("sdm_sklearn"):
            yield name


def _public_names():
    names, seen = [], set()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        exported = getattr(module, "__all__", None)
        if exported is None:
            # without __all__: the public names the module defines itself,
            # not those it imports (helpers of the private modules included)
            exported = [name for name, obj in vars(module).items()
                        if not name.startswith("_")
                        and getattr(obj, "__module__", None) == module_name]
        for name in exported:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue  # constants and __version__
            if not obj.__module__.startswith("sdm_sklearn"):
                continue  # imported from another library
            if id(obj) in seen:
                continue  # exported by two modules: validated once
            seen.add(id(obj))
            path = f"{module_name}.{name}"
            names.append(path)
            if inspect.isclass(obj):
                names.extend(f"{path}.{member}" for member in _own_members(obj))
    return names


PUBLIC_NAMES = _public_names()


def _documented_attributes(cls):
    doc = NumpyDocString(inspect.getdoc(cls) or "")
    return {attribute.name for attribute in doc["Attributes"]}


def _errors(path):
    module_name, _, rest = path.rpartition(".")
    owner = None
    if module_name not in PUBLIC_MODULES:
        # a member of a class: module.Class.member
        module_name, _, class_name = module_name.rpartition(".")
        owner = getattr(importlib.import_module(module_name), class_name)
    errors = []
    for code, message in validate(path)["errors"]:
        if code in IGNORED:
            continue
        if owner is not None and code in IGNORED_FOR_MEMBERS:
            continue
        if (code == "GL08" and owner is not None
                and isinstance(inspect.getattr_static(owner, rest), property)
                and rest in _documented_attributes(owner)):
            continue
        errors.append(f"{code}: {message}")
    return errors


def test_public_names_found():
    # a broken discovery would make every other test pass vacuously
    assert "sdm_sklearn.SDMClassifier.fit" in PUBLIC_NAMES
    assert "sdm_sklearn.SDMClassifier.support_ids_" in PUBLIC_NAMES
    assert "sdm_sklearn.metrics.selective_report" in PUBLIC_NAMES
    assert "sdm_sklearn.monitoring.DriftMonitor.update" in PUBLIC_NAMES
    assert "sdm_sklearn.report.write_report" in PUBLIC_NAMES
    assert "sdm_sklearn.plotting.RiskCoverageDisplay.from_estimator" in PUBLIC_NAMES
    assert not any(".set_fit_request" in name for name in PUBLIC_NAMES)


@pytest.mark.parametrize("path", PUBLIC_NAMES)
def test_docstring(path):
    errors = _errors(path)
    assert not errors, f"{path}:\n" + "\n".join(errors)
