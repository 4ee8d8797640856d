"""Facts .ci/run takes from pyproject.toml, so CI can never drift from what the package claims.

    python .ci/project.py pythons        the X.Y versions the classifiers claim, oldest first
    python .ci/project.py lowest         one pin per runtime dependency, at its declared lower bound
    python .ci/project.py check-lowest   exit 1 unless this interpreter has exactly those versions

Standard library only (tomllib): it runs before anything is installed.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import NoReturn

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"

# name, optional [extras], version specifiers, optional ; marker (PEP 508, without URLs).
_REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*"
    r"(?P<specs>[^;]*?)\s*(?:;\s*(?P<marker>.+?))?\s*$"
)
_CLAIMED = re.compile(r"^Programming Language :: Python :: (3\.\d+)$")


def _project() -> dict[str, object]:
    with PYPROJECT.open("rb") as f:
        project = tomllib.load(f)["project"]
    assert isinstance(project, dict)
    return project


def _die(message: str) -> NoReturn:
    print(f".ci/project.py: {message}", file=sys.stderr)
    raise SystemExit(2)


def claimed_pythons() -> list[str]:
    project = _project()
    classifiers = project.get("classifiers", [])
    assert isinstance(classifiers, list)
    versions = sorted(
        {m.group(1) for c in classifiers if (m := _CLAIMED.match(c))},
        key=lambda v: tuple(int(p) for p in v.split(".")),
    )
    if not versions:
        _die("no 'Programming Language :: Python :: 3.X' classifier in pyproject.toml")
    # requires-python and the classifiers must tell the same story about the oldest Python.
    requires = str(project.get("requires-python", ""))
    floor = re.fullmatch(r"\s*>=\s*(3\.\d+)\s*", requires)
    if floor is None or floor.group(1) != versions[0]:
        _die(f"requires-python {requires!r} does not match the oldest classifier {versions[0]}")
    return versions


def lowest_pins() -> list[tuple[str, str, str | None]]:
    """(name, version, marker) for every runtime dependency; each must have a >= or == bound."""
    dependencies = _project().get("dependencies", [])
    assert isinstance(dependencies, list)
    pins = []
    for requirement in dependencies:
        match = _REQUIREMENT.match(requirement)
        if match is None:
            _die(f"cannot read dependency {requirement!r}")
        specs = [s.strip() for s in match.group("specs").split(",") if s.strip()]
        floors = [
            spec[2:].strip()
            for spec in specs
            if spec[:2] in (">=", "~=", "==") and not spec.startswith("===")
        ]
        if len(floors) != 1 or "*" in floors[0]:
            _die(f"dependency {requirement!r} needs exactly one lower bound (>=, ~= or ==)")
        pins.append((match.group("name"), floors[0], match.group("marker")))
    return pins


def _release(version: str) -> tuple[tuple[int, ...], str]:
    """Enough of PEP 440 to see that 23.1 and 23.1.0 are one version."""
    match = re.match(r"(\d+(?:\.\d+)*)(.*)", version.strip())
    if match is None:
        return ((), version)
    numbers = [int(n) for n in match.group(1).split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    return (tuple(numbers), match.group(2).lower())


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) == 2 else ""
    if command == "pythons":
        print(" ".join(claimed_pythons()))
        return 0
    if command == "lowest":
        for name, version, marker in lowest_pins():
            print(f"{name}=={version}" + (f"; {marker}" if marker else ""))
        return 0
    if command == "check-lowest":
        wrong = []
        for name, version, marker in lowest_pins():
            try:
                installed = metadata.version(name)
            except metadata.PackageNotFoundError:
                if marker:  # its marker may exclude this interpreter
                    print(f"  {name} not installed here ({marker})")
                    continue
                installed = "nothing"
            if _release(installed) != _release(version):
                wrong.append(f"{name}: declared lowest {version}, installed {installed}")
            else:
                print(f"  {name} {installed}")
        for line in wrong:
            print(f"  MISMATCH {line}", file=sys.stderr)
        return 1 if wrong else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
