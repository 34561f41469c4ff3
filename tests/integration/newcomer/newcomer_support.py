"""What the newcomer tests share: a fresh clone of the tree under test, a wheel built from it, fresh venvs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "newcomer", "GIT_AUTHOR_EMAIL": "newcomer@example.com",
                "GIT_COMMITTER_NAME": "newcomer", "GIT_COMMITTER_EMAIL": "newcomer@example.com"}


def _git(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True, timeout=120)


def fresh_clone(destination: Path) -> Path:
    """A `git clone` of this checkout with its uncommitted edits and new files laid over: the tree under test."""
    if shutil.which("git") is None:
        pytest.skip("needs git")
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--git-dir"], capture_output=True).returncode != 0:
        pytest.skip(f"{ROOT} is not a git checkout")
    _git("clone", "--quiet", "--no-hardlinks", str(ROOT), str(destination))
    patch = _git("diff", "HEAD", "--binary").stdout
    if patch:
        subprocess.run(["git", "apply", "--whitespace=nowarn", "-"], cwd=destination, input=patch, check=True,
                       capture_output=True, timeout=120)
    for name in _git("ls-files", "--others", "--exclude-standard", "-z").stdout.decode().split("\0"):
        if name:
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    return destination


def new_venv(path: Path, system_site_packages: bool = False) -> Path:
    """A virtual environment; its bin folder is returned."""
    venv.EnvBuilder(with_pip=True, system_site_packages=system_site_packages, clear=True).create(path)
    return path / "bin"


def environment(bin_dir: Path, home: Path, **extra: str) -> dict[str, str]:
    """A child's environment: the venv first on PATH, a private HOME, no PYTHONPATH leaking this checkout in."""
    home.mkdir(parents=True, exist_ok=True)
    base = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**base, **GIT_IDENTITY, "PATH": f"{bin_dir}{os.pathsep}{base.get('PATH', '')}", "HOME": str(home),
            "VIRTUAL_ENV": str(bin_dir.parent), "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONDONTWRITEBYTECODE": "1",
            **extra}


def build_wheel(source: Path, dist: Path) -> Path:
    """The wheel `pip wheel` builds from SOURCE (what a release builds), in DIST."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist),
                    str(source)], check=True, capture_output=True, timeout=600)
    [wheel] = dist.glob("shipway-*.whl")
    return wheel
