"""Type-check README.md's Python examples as a user's code would be checked (``make lint``).

Every ```python block that imports vniahd is written to a temporary module, outside the
repository (so no project mypy config applies), with one ``assert_type`` per verb result it
binds (``ds = vniahd.generate(...)`` must be a ``Dataset``, not ``Any``), and checked with
``mypy --strict`` against the package as installed: it must ship ``py.typed``
(PEP 561). Exit status 1, with mypy's messages, on any error.

An editable install (``pip install -e``) is found through an import hook mypy cannot follow;
then the directory the interpreter imports vniahd from is given to mypy as ``MYPYPATH``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"

#: What each top-level verb returns, as a user would annotate it.
EXPECTED = {
    "generate": ("from vniahd.dataset import Dataset", "Dataset"),
    "evaluate": ("from vniahd.evaluation import Summary", "Summary"),
    "report": ("from pathlib import Path", "dict[str, Path]"),
    "open_dataset": ("from vniahd.dataset import Dataset", "Dataset"),
}

#: --strict for the examples; vniahd's own code is checked by the project's mypy run, not here
#: (as for any installed package, its errors are the package's, not the user's), and the heavy
#: dependencies behind it are not followed (the verbs' signatures do not mention them).
CONFIG = """\
[mypy]
strict = True
incremental = False
[mypy-vniahd.*]
follow_imports = silent
[mypy-torch.*,transformers.*,pandas.*,matplotlib.*,cv2.*,scipy.*,safetensors.*,accelerate.*]
follow_imports = skip
follow_imports_for_stubs = True
"""

BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
BOUND = re.compile(r"^(\w+)\s*=\s*vniahd\.(\w+)\(", re.M)


def checked_module(block: str) -> str:
    """``block`` plus an ``assert_type`` for each verb result it binds."""
    lines = [block.rstrip(), "", "# added by scripts/check_readme_types.py", "from typing import assert_type"]
    for name, verb in BOUND.findall(block):
        if verb in EXPECTED:
            imp, typ = EXPECTED[verb]
            lines += [imp, f"assert_type({name}, {typ})"]
    return "\n".join(lines) + "\n"


def package_dir() -> Path:
    spec = importlib.util.find_spec("vniahd")
    if spec is None or spec.origin is None:
        sys.exit("vniahd is not installed in this interpreter; run `make setup`")
    pkg = Path(spec.origin).parent
    if not (pkg / "py.typed").is_file():
        sys.exit(f"{pkg} has no py.typed: type checkers ignore vniahd's annotations (PEP 561)")
    return pkg


def main(argv: list[str] | None = None) -> int:
    """``check_readme_types.py [MARKDOWN]`` (default: the repository's README.md)."""
    args = sys.argv[1:] if argv is None else argv
    readme = Path(args[0]) if args else README
    blocks = [b for b in BLOCK.findall(readme.read_text(encoding="utf-8")) if "import vniahd" in b]
    if not blocks:
        sys.exit(f"{readme} has no ```python block that imports vniahd")
    pkg = package_dir()
    env = dict(os.environ)
    site = [p for p in sys.path if p.endswith("site-packages")]
    if not any(Path(p, "vniahd", "py.typed").is_file() for p in site):
        env["MYPYPATH"] = str(pkg.parent)  # editable install (see module docstring)
    with tempfile.TemporaryDirectory(prefix="readme-types-") as tmp:
        files = []
        for i, block in enumerate(blocks, 1):
            path = Path(tmp, f"readme_block_{i}.py")
            path.write_text(checked_module(block), encoding="utf-8")
            files.append(str(path))
        Path(tmp, "mypy.ini").write_text(CONFIG, encoding="utf-8")
        cmd = [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--python-executable"]
        cmd += [sys.executable, *files]
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
    print(proc.stdout + proc.stderr, end="")
    if proc.returncode:
        print(f"{readme.name}'s Python examples do not type-check against {pkg}", file=sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
