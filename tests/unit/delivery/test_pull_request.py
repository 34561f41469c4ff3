"""After promote: the next step is printed, --push pushes, --open-pr opens the pull request through the
GitHub REST API (a local fake of it on 127.0.0.1: POST /repos/{owner}/{repo}/pulls, 201 with number and
html_url; 422 when one is already open, then GET /repos/{owner}/{repo}/pulls?head=owner:branch)."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from delivery_cases import MODELS
from shipway.cli.delivery import register
from shipway.delivery.gitops_repo import init_gitops
from shipway.delivery.pull_request import compare_url, open_pull_request, repository_slug

app = typer.Typer()
register(app)
runner = CliRunner()


class FakeGitHub:
    """Records each request; answers like GitHub's pulls endpoint."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.open: dict[str, dict[str, Any]] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"method": "POST", "path": self.path, "body": body,
                                      "auth": self.headers.get("Authorization")})
                if body["head"] in fake.open:
                    self._answer(422, {"message": "Validation Failed"})
                    return
                number = len(fake.open) + 1
                pull = {"number": number, "html_url": f"https://github.example/pull/{number}"}
                fake.open[body["head"]] = pull
                self._answer(201, pull)

            def do_GET(self) -> None:  # noqa: N802
                fake.requests.append({"method": "GET", "path": self.path, "auth": self.headers.get("Authorization")})
                head = self.path.split("head=", 1)[1].split("&", 1)[0].split(":", 1)[1]
                self._answer(200, [fake.open[head]] if head in fake.open else [])

            def log_message(self, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v3"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
        fake.thread.join(timeout=10)


@pytest.fixture
def clones(tmp_path: Path, kind_profile: dict[str, Any]) -> tuple[Path, Path, Path]:
    """A GitOps clone whose origin is a bare repo at .../shipway-dev/gitops.git; a model repo with a report."""
    gitops = tmp_path / "gitops"
    init_gitops(gitops, kind_profile, json.dumps(kind_profile))
    origin = tmp_path / "shipway-dev" / "gitops.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(origin)], check=True)
    subprocess.run(["git", "-C", str(gitops), "remote", "add", "origin", str(origin)], check=True)
    model = tmp_path / "repo"
    (model / "build" / "gate").mkdir(parents=True)
    (model / "model.yaml").write_text((MODELS / "sklearn-none.yaml").read_text())
    (model / "build" / "gate" / "gate-report.json").write_text(json.dumps(
        {"schema": "shipway.dev/gate-report/v1", "passed": True, "reasons": [],
         "model": {"name": "churn-basic", "version": "abc1234", "artifactDigest": None}}))
    return gitops, origin, model


def _promote(model: Path, gitops: Path, *extra: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, ["promote", str(model / "model.yaml"), "--gitops-repo", str(gitops), "--env",
                               "staging", "--version", "abc1234", "--artifact-digest", "sha256:" + "d" * 64, *extra], env=env)


def _remote_branch(origin: Path, branch: str) -> str:
    return subprocess.run(["git", "-C", str(origin), "rev-parse", "--verify", "--quiet", branch],
                          capture_output=True, text=True).stdout.strip()


def test_promote_prints_the_branch_and_how_to_push_it_and_open_the_pull_request(clones) -> None:
    gitops, origin, model = clones
    done = _promote(model, gitops)
    assert done.exit_code == 0, done.output
    branch = "promote/staging/churn-basic-abc1234"
    assert f"on branch {branch}" in done.output
    assert f"next: push the branch: git -C {gitops} push --set-upstream origin {branch}" in done.output
    assert f"open a pull request from {branch} into main" in done.output
    assert _remote_branch(origin, branch) == ""


def test_push_pushes_and_a_github_remote_gets_the_compare_url(clones) -> None:
    gitops, origin, model = clones
    done = _promote(model, gitops, "--push")
    assert done.exit_code == 0, done.output
    branch = "promote/staging/churn-basic-abc1234"
    assert "; pushed" in done.output and _remote_branch(origin, branch)
    assert "next: open a pull request" in done.output and "push the branch" not in done.output
    assert compare_url("git@github.com:shipway-dev/gitops.git", "main", branch) == (
        f"https://github.com/shipway-dev/gitops/compare/main...{branch}?expand=1")
    assert compare_url(str(origin), "main", branch) is None
    assert repository_slug("https://github.com/shipway-dev/gitops.git") == ("shipway-dev", "gitops")
    assert repository_slug(str(origin)) == ("shipway-dev", "gitops")


def test_open_pr_pushes_and_opens_the_pull_request_through_the_api(clones, github: FakeGitHub) -> None:
    gitops, origin, model = clones
    env = {"GITHUB_TOKEN": "t0ken", "GITHUB_API_URL": github.url}
    done = _promote(model, gitops, "--open-pr", env=env)
    assert done.exit_code == 0, done.output
    branch = "promote/staging/churn-basic-abc1234"
    assert _remote_branch(origin, branch)
    [create] = github.requests
    assert (create["method"], create["path"], create["auth"]) == ("POST", "/api/v3/repos/shipway-dev/gitops/pulls",
                                                                   "Bearer t0ken")
    assert create["body"]["head"] == branch and create["body"]["base"] == "main"
    assert create["body"]["title"] == "Promote churn-basic abc1234 to staging (gate: pass)"
    assert "version: abc1234" in create["body"]["body"]
    assert "pull request #1 opened: https://github.example/pull/1" in done.output


def test_a_pull_request_already_open_for_the_branch_is_reported(clones, github: FakeGitHub) -> None:
    gitops, origin, model = clones
    env = {"GITHUB_TOKEN": "t0ken", "GITHUB_API_URL": github.url}
    assert _promote(model, gitops, "--open-pr", env=env).exit_code == 0
    branch = "promote/staging/churn-basic-abc1234"
    again = open_pull_request(str(origin), branch, "main", "t", "b", "t0ken", github.url)
    assert (again.number, again.url, again.existed) == (1, "https://github.example/pull/1", True)
    assert [r["method"] for r in github.requests] == ["POST", "POST", "GET"]
    assert github.requests[-1]["path"] == f"/api/v3/repos/shipway-dev/gitops/pulls?head=shipway-dev:{branch}&state=open"


def test_open_pr_without_a_token_is_refused_before_anything_changes(clones) -> None:
    gitops, origin, model = clones
    done = _promote(model, gitops, "--open-pr", env={"GITHUB_TOKEN": ""})
    assert done.exit_code == 2 and "GITHUB_TOKEN" in done.output
    assert subprocess.run(["git", "-C", str(gitops), "branch", "--list", "promote/*"], capture_output=True,
                          text=True).stdout == ""
