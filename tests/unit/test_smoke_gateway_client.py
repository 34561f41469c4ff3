"""The smoke suite's Gateway client against a real TLS server on 127.0.0.1: it dials 127.0.0.1, names the route's
host in SNI and Host (as `curl --resolve` does), and trusts only the CA it is given."""

from __future__ import annotations

import datetime
import json
import ssl
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "smoke"))
from smoke_support import GatewayClient  # noqa: E402

HOST = "churn.fraud.staging.shipway-dev.localhost"


def _ca_and_leaf(tmp_path: Path, name: str) -> tuple[str, Path, Path]:
    """A CA (PEM text) and a certificate for `name` it signed, with its key, as files."""
    x509 = pytest.importorskip("cryptography.x509", reason="needs the cryptography package to make certificates")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test gateway CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(2).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_file, key_file = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    return ca.public_bytes(serialization.Encoding.PEM).decode(), cert_file, key_file


class _Echo(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        answer = json.dumps({"host": self.headers["Host"], "sni": self.server.sni, "body": json.loads(body)}).encode()
        self.send_response(200)
        self.send_header("X-Shipway-Model-Version", "1.2.0")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """A TLS server on a free 127.0.0.1 port serving HOST's certificate; yields its port and the CA."""
    ca_pem, cert_file, key_file = _ca_and_leaf(tmp_path, HOST)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.sni = None

    def remember(_socket: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        server.sni = name

    context.sni_callback = remember
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield server.server_address[1], ca_pem
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_the_client_names_the_route_host_while_dialling_loopback(tls_server: tuple[int, str]) -> None:
    port, ca_pem = tls_server
    status, headers, body = GatewayClient(HOST, port, ca_pem).post("/v2/models/churn/infer", {"inputs": []})
    assert status == 200 and headers["x-shipway-model-version"] == "1.2.0"
    seen = json.loads(body)
    assert seen == {"host": f"{HOST}:{port}", "sni": HOST, "body": {"inputs": []}}


def test_the_client_refuses_a_certificate_for_another_host(tls_server: tuple[int, str]) -> None:
    port, ca_pem = tls_server
    with pytest.raises(ssl.SSLCertVerificationError):
        GatewayClient("other.fraud.staging.shipway-dev.localhost", port, ca_pem).post("/", {})


def test_the_client_trusts_only_the_ca_it_is_given(tls_server: tuple[int, str], tmp_path: Path) -> None:
    port, _ = tls_server
    other_ca, _, _ = _ca_and_leaf(tmp_path, "elsewhere.example")
    with pytest.raises(ssl.SSLCertVerificationError):
        GatewayClient(HOST, port, other_ca).post("/", {})
