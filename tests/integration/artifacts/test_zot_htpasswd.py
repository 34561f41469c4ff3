"""Issue #16 finding 5: the htpasswd lines Shipway writes for zot are real bcrypt that Go's bcrypt accepts.

zot v2.1.18 (pkg/api/htpasswd.go, HTPasswd.Authenticate) checks a `$2a$`, `$2b$` or `$2y$` line with
golang.org/x/crypto/bcrypt.CompareHashAndPassword. Debian's docker-registry (distribution) checks htpasswd
with the same Go package, so it stands in for zot here: it must take the right password and refuse others.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
import requests

import conftest
from conftest import PASSWORD, USERNAME

pytestmark = pytest.mark.integration


def test_go_bcrypt_accepts_shipway_htpasswd_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shipway.render.registry import BCRYPT_COST, htpasswd_line

    salt = base64.b64encode(os.urandom(16)).decode()
    written: list[str] = []

    def shipway_line(user: str, password: str) -> str:
        line = htpasswd_line(user, password, salt).rstrip("\n")
        written.append(line)
        return line

    monkeypatch.setattr(conftest, "_htpasswd_line", shipway_line)
    running = conftest._registry(tmp_path, with_auth=True)
    server = next(running)
    try:
        assert written and written[0].startswith(f"{USERNAME}:$2b${BCRYPT_COST:02d}$")
        url = f"http://{server.host}/v2/"
        assert requests.get(url, auth=(USERNAME, PASSWORD), timeout=5).status_code == 200
        assert requests.get(url, auth=(USERNAME, PASSWORD + "x"), timeout=5).status_code == 401
        assert requests.get(url, auth=(USERNAME, PASSWORD[:-1]), timeout=5).status_code == 401
        assert requests.get(url, timeout=5).status_code == 401
    finally:
        running.close()


def test_a_password_over_72_bytes_logs_in_with_its_first_72_counting(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A user-chosen `shipway:registryPassword` may be longer than bcrypt's 72 bytes: Shipway hashes its first 72
    (Python's bcrypt refuses more), and Go's CompareHashAndPassword (golang.org/x/crypto bcrypt/bcrypt.go) does not
    refuse a long password but keys Blowfish with its first 72 bytes only, so the full password logs in."""
    from shipway.render.registry import htpasswd_line

    salt = base64.b64encode(os.urandom(16)).decode()
    long_password = "password-" * 12  # 108 bytes
    assert len(long_password.encode()) > 72
    monkeypatch.setattr(conftest, "_htpasswd_line",
                        lambda user, _password: htpasswd_line(user, long_password, salt).rstrip("\n"))
    running = conftest._registry(tmp_path, with_auth=True)
    server = next(running)
    try:
        url = f"http://{server.host}/v2/"
        assert requests.get(url, auth=(USERNAME, long_password), timeout=5).status_code == 200
        first_71 = long_password[:71]
        assert requests.get(url, auth=(USERNAME, first_71), timeout=5).status_code == 401
    finally:
        running.close()
