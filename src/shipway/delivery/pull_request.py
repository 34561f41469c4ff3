"""After a promotion: where its pull request is opened, and opening it through the GitHub REST API.

The API base comes from GITHUB_API_URL (GitHub Actions sets it; GitHub Enterprise Server has its own), else
https://api.github.com; the token from GITHUB_TOKEN. Endpoint and fields: GitHub REST API "Create a pull
request" (POST /repos/{owner}/{repo}/pulls with title, head, base, body) and "List pull requests" (GET ...
/pulls?head=owner:branch) for one that already exists.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from shipway.delivery.errors import PromotionRefused

DEFAULT_API = "https://api.github.com"
TIMEOUT_S = 30
# https://github.com/OWNER/REPO(.git), git@github.com:OWNER/REPO(.git), ssh://git@host/OWNER/REPO, or a path.
_SLUG = re.compile(r"[:/](?P<owner>[^/:]+)/(?P<repo>[^/]+?)(?:\.git)?/?$")


@dataclass(frozen=True)
class PullRequest:
    """An open pull request: its number and the page a reviewer opens."""

    number: int
    url: str
    existed: bool = False


def repository_slug(remote_url: str) -> tuple[str, str] | None:
    """OWNER and REPO from a remote's URL, or None when the URL does not name them."""
    found = _SLUG.search(remote_url.strip())
    return (found["owner"], found["repo"]) if found else None


def compare_url(remote_url: str, base: str, branch: str) -> str | None:
    """The page that opens a pull request from BRANCH into BASE, for a repository on github.com."""
    slug = repository_slug(remote_url)
    if slug is None or "github.com" not in remote_url:
        return None
    return f"https://github.com/{slug[0]}/{slug[1]}/compare/{base}...{branch}?expand=1"


def _call(method: str, url: str, token: str, payload: dict[str, Any] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method, data=None if payload is None else json.dumps(payload).encode(),
                                     headers={"Authorization": f"Bearer {token}",
                                              "Accept": "application/vnd.github+json",
                                              "X-GitHub-Api-Version": "2022-11-28",
                                              "Content-Type": "application/json",
                                              "User-Agent": "shipway-promote"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            return error.code, json.loads(body or b"null")
        except ValueError:
            return error.code, {"message": body.decode(errors="replace")[:200]}
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise PromotionRefused(f"cannot reach the GitHub API at {url}: {error}") from None


def open_pull_request(remote_url: str, branch: str, base: str, title: str, body: str, token: str,
                      api: str | None = None) -> PullRequest:
    """Open a pull request from BRANCH into BASE, or return the one already open for BRANCH."""
    slug = repository_slug(remote_url)
    if slug is None:
        raise PromotionRefused(f"cannot tell the GitHub repository from the remote URL {remote_url!r}")
    owner, repo = slug
    root = (api or DEFAULT_API).rstrip("/")
    status, answer = _call("POST", f"{root}/repos/{owner}/{repo}/pulls", token,
                           {"title": title, "head": branch, "base": base, "body": body})
    if status == 201 and isinstance(answer, dict):
        return PullRequest(int(answer["number"]), str(answer["html_url"]))
    if status == 422:
        # One is already open for this branch (a promotion run again): report that one.
        found_status, found = _call("GET", f"{root}/repos/{owner}/{repo}/pulls?head={owner}:{branch}&state=open",
                                    token)
        if found_status == 200 and isinstance(found, list) and found:
            return PullRequest(int(found[0]["number"]), str(found[0]["html_url"]), existed=True)
    message = answer.get("message") if isinstance(answer, dict) else answer
    raise PromotionRefused(f"GitHub refused to open a pull request from {branch} into {base} in {owner}/{repo} "
                           f"(HTTP {status}: {message}); check GITHUB_TOKEN's access to that repository")
