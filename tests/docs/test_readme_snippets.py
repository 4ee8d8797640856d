"""Every ```python block of README.md runs as written, each in a fresh process.

A block runs as a script (``python snippet.py``, cwd a temporary directory,
``PYTHONPATH`` the repository root); a block that defines a top-level
``test_...`` function runs under pytest instead, in a fresh project with no
configuration, as a new user would run it. A block may be preceded (its last
non-blank line before the fence) by an HTML comment, invisible on GitHub and
PyPI, that says how to run it:

* ``<!-- snippet: needs-emulator -->``: this test starts an emulator and
  exports ``SMARTCAR_API_ORIGIN``, ``SMARTCAR_AUTH_ORIGIN`` and
  ``SMARTCAR_MANAGEMENT_API_ORIGIN`` (its URL), ``VEHICLE_ID`` (its first
  vehicle) and ``ACCESS_TOKEN`` (any token: the emulator accepts it), which
  stand for the user's real values.
* ``<!-- snippet: continues (why) -->``: the block continues the previous
  ```python block, which runs first in the same script.
* ``<!-- snippet: pytest -->``: run under pytest (implied by a top-level test).
* ``<!-- snippet: no-run: why -->``: only compiled; for a fragment that cannot
  run alone. The reason is required, and such blocks should stay rare.

Failures name the block by its line in README.md. Shell blocks are not run
(they install packages); the set-up commands the README promises are checked.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from smartcar_async.testing import Emulator

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SNIPPET_TIMEOUT = 45.0

SETUP_COMMANDS = (
    "python -m pip install -e '.[demo]' && python -m smartcar_async poll",
    "python -m pip install -e '.[dev]' && python -m pytest",
)

_FENCE = re.compile(r"^```(\S*)\s*$")
_MARKER = re.compile(r"^<!--\s*snippet:\s*(?P<kind>[a-z-]+)\s*(?P<rest>.*?)\s*-->\s*$")
_KINDS = frozenset({"needs-emulator", "continues", "pytest", "no-run"})
_TOP_LEVEL_TEST = re.compile(r"^(async\s+)?def\s+test_\w*\s*\(", re.MULTILINE)
# Variables that would point a snippet somewhere else or reconfigure its pytest.
_SCRUBBED_ENV = ("SMARTCAR_", "PYTEST_", "VEHICLE_ID", "ACCESS_TOKEN")


@attrs.frozen
class Block:
    lang: str
    line: int  # 1-based line of the opening fence
    code: str
    marker: str | None  # the marker's kind
    reason: str  # the text after the kind, e.g. why a block cannot run

    @property
    def where(self) -> str:
        return f"README.md:{self.line}"


def parse(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and lines[index].rstrip() != "```":
            body.append(lines[index])
            index += 1
        if index == len(lines):
            raise AssertionError(f"README.md:{start + 1}: code block never closed")
        index += 1
        marker, reason = None, ""
        previous = start - 1
        while previous >= 0 and not lines[previous].strip():
            previous -= 1
        if previous >= 0 and (found := _MARKER.match(lines[previous].strip())):
            marker, reason = found["kind"], found["rest"].lstrip(":").strip()
        blocks.append(Block(opening[1], start + 1, "\n".join(body) + "\n", marker, reason))
    return blocks


BLOCKS = parse(README.read_text(encoding="utf-8"))
PYTHON = [b for b in BLOCKS if b.lang == "python"]


def _script(block: Block) -> str:
    """The block's code, preceded by the blocks it continues."""
    if block.marker != "continues":
        return block.code
    earlier = [b for b in PYTHON if b.line < block.line]
    if not earlier:
        raise AssertionError(f"{block.where}: 'continues' but no python block before it")
    return _script(earlier[-1]) + "\n" + block.code


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_ENV)}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


@pytest.fixture
def emulator_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    block: Block = request.node.callspec.params["block"]
    if block.marker != "needs-emulator":
        yield {}
        return
    with Emulator(vehicles=3, seed=1).in_thread() as emu:
        yield {
            "SMARTCAR_API_ORIGIN": emu.url,
            "SMARTCAR_AUTH_ORIGIN": emu.url,
            "SMARTCAR_MANAGEMENT_API_ORIGIN": emu.url,
            "VEHICLE_ID": emu.fleet.ids[0],
            "ACCESS_TOKEN": "any-access-token",
        }


def _run(block: Block, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    try:
        done = subprocess.run(
            argv, cwd=cwd, env=_env(env), capture_output=True, text=True, timeout=SNIPPET_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{block.where}: the snippet did not finish within {SNIPPET_TIMEOUT} s")
    if done.returncode != 0:
        pytest.fail(
            f"{block.where}: the snippet failed (exit status {done.returncode}) running "
            f"{' '.join(argv[1:])}\n--- stdout\n{done.stdout[-3000:]}\n"
            f"--- stderr\n{done.stderr[-3000:]}",
            pytrace=False,
        )


@pytest.mark.parametrize("block", PYTHON, ids=[b.where for b in PYTHON])
def test_python_snippet_runs_as_written(
    block: Block, tmp_path: Path, emulator_env: dict[str, str]
) -> None:
    if block.marker is not None and block.marker not in _KINDS:
        pytest.fail(f"{block.where}: unknown snippet marker {block.marker!r}", pytrace=False)
    source = _script(block)
    if block.marker == "no-run":
        assert block.reason, f"{block.where}: a no-run marker must say why the block cannot run"
        flags = 0x2000  # ast.PyCF_ALLOW_TOP_LEVEL_AWAIT: a fragment may await at top level
        compile(source, block.where, "exec", flags=flags, dont_inherit=True)
        return
    if block.marker == "pytest" or _TOP_LEVEL_TEST.search(source):
        (tmp_path / "test_x.py").write_text(source, encoding="utf-8")
        argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_x.py"]
        _run(block, argv, tmp_path, emulator_env)
        return
    (tmp_path / "snippet.py").write_text(source, encoding="utf-8")
    _run(block, [sys.executable, "snippet.py"], tmp_path, emulator_env)


def test_readme_has_python_snippets() -> None:
    # A parser that silently found nothing would make every check above vacuous.
    assert len(PYTHON) >= 5, [b.where for b in BLOCKS]


def test_snippet_markers_sit_on_python_blocks() -> None:
    misplaced = [b.where for b in BLOCKS if b.marker is not None and b.lang != "python"]
    assert not misplaced, f"snippet markers before non-python blocks: {misplaced}"


def test_setup_commands_are_the_two_promised() -> None:
    shell = [b for b in BLOCKS if b.lang in ("bash", "sh", "shell", "console")]
    commands = [
        (b.where, line.strip())
        for b in shell
        for line in b.code.splitlines()
        if "pip install" in line
    ]
    found = [command for _, command in commands]
    assert sorted(found) == sorted(SETUP_COMMANDS), (
        f"the README's set-up commands should be exactly {SETUP_COMMANDS}, found {commands}"
    )
