"""Print the pyproject.toml requirement strings of the named packages (for the bootstrap steps).

torch, torchvision and sam2 must be installed before the package itself (sam2 compiles against
torch); reading their pins from pyproject.toml keeps a single source of truth. Runs on a bare
venv, so it uses the standard library only.
"""

import re
import sys
import tomllib
from pathlib import Path


def main(names: list[str]) -> None:
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    by_name = {re.match(r"[A-Za-z0-9_.-]+", d).group(0).lower(): d for d in deps}
    missing = [n for n in names if n.lower() not in by_name]
    if missing:
        sys.exit(f"{pyproject}: no dependency named {missing}")
    print(" ".join(by_name[n.lower()] for n in names))


if __name__ == "__main__":
    main(sys.argv[1:])
