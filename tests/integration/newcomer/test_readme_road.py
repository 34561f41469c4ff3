"""README.md is executable: its shell blocks run, in order, in a fresh clone, as a newcomer would type them.

Then the generated model repo's README runs the same way inside the repo the first README created. `REGISTRY`
is a real registry (Debian's docker-registry) on 127.0.0.1; lines that need a tool no test may use here (a kind
cluster, the Pulumi CLI) are left out and named. A README edit that breaks the road fails this test.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from newcomer_support import ROOT, environment, fresh_clone, new_venv

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BASH_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)
COMMENT = re.compile(r"\s+#\s.*$")
# Programs whose lines are not run here, and why.
LEFT_OUT = {
    "kind": "kind creates a cluster (the smoke-kind workflow runs it)",
    "pulumi": "the Pulumi CLI deploys to a cluster (the smoke-kind workflow runs it)",
    "kubectl": "it talks to a live cluster (the smoke-kind workflow has one)",
    "pytest": "the test suite this test is part of",
}


def shell_lines(readme: Path) -> list[str]:
    """Every command line of the README's ```bash blocks, in order, comments dropped."""
    lines = []
    for block in BASH_BLOCK.findall(readme.read_text(encoding="utf-8")):
        for line in block.splitlines():
            command = COMMENT.sub("", line).strip()
            if command and not command.startswith("#"):
                lines.append(command)
    return lines


def runnable(line: str) -> tuple[str, list[str]]:
    """The line without the commands left out here, and the reasons for what was left out."""
    kept, reasons = [], []
    for segment in (part.strip() for part in line.split("&&")):
        program = shlex.split(segment)[0]
        if program in LEFT_OUT:
            reasons.append(f"`{segment}`: {LEFT_OUT[program]}")
        else:
            kept.append(segment)
    return " && ".join(kept), reasons


def _registry_module():
    """The artifact tests' registry server, loaded by path: conftest modules cannot be imported by name."""
    path = ROOT / "tests" / "integration" / "artifacts" / "conftest.py"
    spec = importlib.util.spec_from_file_location("shipway_test_registry", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass resolves annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """host:port of a real registry on 127.0.0.1."""
    yield from (server.host for server in _registry_module()._registry(tmp_path, with_auth=False))


def _run(lines: list[str], cwd: Path, env: dict[str, str], transcript: list[str]) -> Path:
    """Run the lines in one bash, so `cd` carries over; return the folder the last line ended in."""
    where = cwd.parent / ".where"
    script = ["set -euo pipefail"]
    for line in lines:
        script += [f"echo {shlex.quote('$ ' + line)}", line]
    script.append(f"pwd > {shlex.quote(str(where))}")
    done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)
    transcript.append(done.stdout + done.stderr)
    assert done.returncode == 0, "a README line failed:\n" + done.stdout[-6000:] + done.stderr[-6000:]
    return Path(where.read_text().strip())


def test_the_readme_road_runs_from_a_fresh_clone(tmp_path: Path, registry: str) -> None:
    for tool in ("make", "git"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")
    clone = fresh_clone(tmp_path / "shipway")
    bin_dir = new_venv(tmp_path / "venv", system_site_packages=True)  # the suite's own deps, for speed
    env = environment(bin_dir, tmp_path / "home", SHIPWAY_PLAIN_HTTP="1")
    transcript: list[str] = []
    left_out: list[str] = []

    commands = []
    for line in shell_lines(clone / "README.md"):
        kept, reasons = runnable(line.replace("REGISTRY", registry))
        left_out += reasons
        if kept:
            commands.append(kept)
    assert commands[0] == "pip install -e . && shipway synth blueprints/kind-dev.yaml"
    assert any(command.startswith("make ") for command in commands)
    ended_in = _run(commands, clone, env, transcript)

    # Each step left what the next one reads.
    assert (clone / "synth.out" / "platform.json").is_file() and (clone / "kind.yaml").is_file()
    model_repo = clone / "fraud-scorer"
    assert ended_in == model_repo
    assert (model_repo / "build" / "gate" / "gate-report.json").is_file()
    branches = subprocess.run(["git", "-C", str(clone / "gitops"), "branch", "--list", "promote/*"],
                              capture_output=True, text=True, check=True).stdout
    assert "promote/staging/fraud-scorer-" in branches
    tags = subprocess.run(["curl", "-sf", f"http://{registry}/v2/fraud/fraud-scorer/tags/list"],
                          capture_output=True, text=True).stdout if shutil.which("curl") else "fraud-scorer"
    assert "fraud-scorer" in tags
    assert all(reason.split("`")[1].split()[0] in LEFT_OUT for reason in left_out), left_out
    print("README lines not run here:", *left_out, sep="\n  ")

    # The generated repo's own README, run inside it.
    model_lines = [runnable(line)[0] for line in shell_lines(model_repo / "README.md")]
    assert "make install" in model_lines and "make all" in model_lines
    _run([line for line in model_lines if line], model_repo, env, transcript)
    gate_output = transcript[-1]
    assert "gate PASS" in gate_output and "warning" not in gate_output.lower(), gate_output[-3000:]
