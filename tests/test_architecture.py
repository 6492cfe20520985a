"""The shape of the package: imports run one way, and what loads with it.

- The graph of imports between the package's modules, those inside
  functions included, has no cycle: an import moved into a function to
  dodge a cycle still counts.
- The search backends import the exact backend, the kernel modules and the
  row-block helpers only; the one exception is a composite backend built on
  two others (``_dask_faiss``: FAISS cells in the Dask shards), which
  imports those two as well. The exact backend imports no other backend.
- numba is imported by the kernel modules only.
- ``import sdm_sklearn`` loads no search backend but the exact one, and none
  of the heavy or optional libraries (numba, dask, distributed, faiss,
  pynndescent).
"""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sdm_sklearn

PACKAGE = "sdm_sklearn"
ROOT = Path(sdm_sklearn.__file__).parent
KERNEL_MODULES = {"_adam", "_conformal", "_faiss_kernels", "_shard_kernels",
                  "_similarity"}
BACKENDS = {"_faiss", "_nndescent", "_dask_support", "_dask_faiss"}
# what a backend may import: the exact backend and its shared rules, the
# kernels, row blocks and the BLAS thread policy
BACKEND_IMPORTS = {"_exact", "_blocks", "_blas", "_similarity", "_faiss_kernels",
                   "_shard_kernels"}
# the exception: a composite backend built on two others may import those
COMPOSITE_BACKENDS = {"_dask_faiss": {"_dask_support", "_faiss"}}
# the backends and kernels, and the heavy or optional libraries
KERNELS_OF_BACKENDS = {"_faiss_kernels", "_shard_kernels", "_similarity"}
NOT_LOADED = [
    f"{PACKAGE}.{name}" for name in sorted(BACKENDS | KERNELS_OF_BACKENDS)
] + ["numba", "dask", "distributed", "faiss", "pynndescent"]


def _module_name(path):
    relative = path.relative_to(ROOT).with_suffix("")
    parts = [PACKAGE, *relative.parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules():
    return {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _imports(name, path, modules):
    """The package's modules that ``name`` imports, anywhere in its code.

    A submodule's import does not count as one of the package that holds it
    (the package is being imported already); taking a name from the package
    (``from sdm_sklearn import SDMClassifier``) does.
    """
    is_package = path.name == "__init__.py"
    base = name.split(".") if is_package else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                origin = ".".join(anchor + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # ``from . import x`` imports the module x when there is one,
            # else the name x from the package
            targets = [f"{origin}.{alias.name}"
                       if f"{origin}.{alias.name}" in modules else origin
                       for alias in node.names]
        else:
            continue
        found.update(target for target in targets
                     if target in modules and target != name)
    return found


@pytest.fixture(scope="module")
def graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _short(name):
    return name.removeprefix(f"{PACKAGE}.")


def _cycle(graph):
    """One import cycle of ``graph`` as a list of modules, or None."""
    state = {}
    stack = []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_walk_sees_imports_inside_functions(graph):
    # _search imports the optional backends inside its factories
    assert {f"{PACKAGE}._faiss", f"{PACKAGE}._nndescent",
            f"{PACKAGE}._dask_support",
            f"{PACKAGE}._dask_faiss"} <= graph[f"{PACKAGE}._search"]
    assert f"{PACKAGE}.classifier" in graph[PACKAGE]


def test_imports_between_modules_form_no_cycle(graph):
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(map(_short, cycle))


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_backends_import_the_exact_backend_and_kernels_only(graph, backend):
    imported = {_short(name) for name in graph[f"{PACKAGE}.{backend}"]}
    allowed = BACKEND_IMPORTS | COMPOSITE_BACKENDS.get(backend, set())
    assert imported <= allowed, sorted(imported - allowed)
    assert "_exact" in imported


@pytest.mark.parametrize("composite", sorted(COMPOSITE_BACKENDS))
def test_a_composite_backend_is_built_on_two_plain_backends(composite):
    parts = COMPOSITE_BACKENDS[composite]
    assert composite in BACKENDS and len(parts) == 2
    assert parts <= BACKENDS - set(COMPOSITE_BACKENDS), sorted(parts)


def test_the_exact_backend_imports_no_backend_nor_the_model(graph):
    imported = {_short(name) for name in graph[f"{PACKAGE}._exact"]}
    assert imported <= {"_blocks", "_similarity"}, sorted(imported)


def test_kernel_modules_import_no_backend(graph):
    for kernel in KERNEL_MODULES:
        imported = {_short(name) for name in graph[f"{PACKAGE}.{kernel}"]}
        assert imported <= KERNEL_MODULES, (kernel, sorted(imported))


def test_numba_is_imported_by_kernel_modules_only():
    users = set()
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level:
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            if "numba" in roots:
                users.add(_short(name))
    assert users <= KERNEL_MODULES, sorted(users - KERNEL_MODULES)


def test_import_loads_no_backend_but_the_exact_one():
    # the package's __init__ imports SDMClassifier: one import covers both
    code = ("import json, sys; import sdm_sklearn; "
            "print(json.dumps(sorted(sys.modules)))")
    # the package under test, wherever the interpreter would find another
    path = os.pathsep.join(filter(None, [str(ROOT.parent),
                                         os.environ.get("PYTHONPATH")]))
    output = subprocess.run([sys.executable, "-c", code], check=True,
                            capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": path}).stdout
    loaded = set(json.loads(output))
    assert f"{PACKAGE}._exact" in loaded
    assert not loaded.intersection(NOT_LOADED), sorted(
        loaded.intersection(NOT_LOADED))
