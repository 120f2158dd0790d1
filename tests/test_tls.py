"""Internal TLS to the Hub (JUPYTERHUB_SSL_*), on the sync and the async driver.

A real HTTPS "Hub" on 127.0.0.1 that requires a client certificate signed by its CA, with a
CA, server and client certificates made here with ``cryptography``.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tornado.httpserver import HTTPServer
from tornado.web import Application, RequestHandler

from hubauth import HubAuth, HubUnavailable

from .conftest import TOKEN
from .services import free_port, serve_tornado

ALICE = {"kind": "user", "name": "alice", "scopes": ["access:services"], "groups": []}


def _cert(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
) -> x509.Certificate:
    """A certificate with the extensions strict verification wants (Python 3.13 turns on
    ``VERIFY_X509_STRICT`` by default): key identifiers, key usage, and for leaves the
    extended key usage and the 127.0.0.1 address.
    """
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, signer = issuer if issuer else (subject, key)
    now = datetime.datetime.now(datetime.timezone.utc)
    usage = dict.fromkeys(
        (
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
            critical=False,
        )
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=ca, crl_sign=ca, **usage),
            critical=True,
        )
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        ).add_extension(
            x509.ExtendedKeyUsage(
                [x509.ExtendedKeyUsageOID.SERVER_AUTH, x509.ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    return builder.sign(signer, hashes.SHA256())


def _write(
    path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None = None
) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("hubauth test CA", ca_key, None, ca=True)
    _write(d / "ca.pem", ca)
    for name in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        _write(d / f"{name}.pem", _cert(name, key, (ca.subject, ca_key)), key)
    other_key = ec.generate_private_key(ec.SECP256R1())
    _write(d / "other-ca.pem", _cert("another CA", other_key, None, ca=True))
    return d


class User(RequestHandler):
    def get(self) -> None:
        if self.request.headers.get("Authorization") == "token alice-token":
            self.write(json.dumps(ALICE))
        else:
            self.set_status(403)


class Info(RequestHandler):
    def get(self) -> None:
        self.write(json.dumps({"version": "6.1.1"}))


@pytest.fixture(scope="module")
def tls_hub(pki: Path) -> Iterator[str]:
    port = free_port()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.pem"))
    ctx.load_cert_chain(str(pki / "server.pem"), str(pki / "server.key"))
    ctx.verify_mode = ssl.CERT_REQUIRED
    app = Application([("/hub/api/user", User), ("/hub/api/", Info)])

    def start() -> HTTPServer:
        server = HTTPServer(app, ssl_options=ctx)
        server.listen(port, "127.0.0.1")
        return server

    with serve_tornado(start):
        yield f"https://127.0.0.1:{port}/hub/api"


def internal_ssl_env(pki: Path, api_url: str) -> dict[str, str]:
    """What the Hub gives a service under ``internal_ssl``: its certificate, key and CA."""
    return {
        "JUPYTERHUB_API_TOKEN": TOKEN,
        "JUPYTERHUB_API_URL": api_url,
        "JUPYTERHUB_SSL_CERTFILE": str(pki / "client.pem"),
        "JUPYTERHUB_SSL_KEYFILE": str(pki / "client.key"),
        "JUPYTERHUB_SSL_CLIENT_CA": str(pki / "ca.pem"),
    }


def both(auth: HubAuth, token: str) -> list[object]:
    """The answer of the sync and of the async driver."""
    return [
        auth.user_for_token(token, use_cache=False),
        asyncio.run(auth.user_for_token(token, use_cache=False, sync=False)),
    ]


def test_client_certificate_and_ca_from_the_environment(pki: Path, tls_hub: str) -> None:
    env = internal_ssl_env(pki, tls_hub)
    auth = HubAuth(environ=env)
    assert both(auth, "alice-token") == [ALICE, ALICE]
    assert both(auth, "unknown-token") == [None, None]
    auth.close()


@pytest.mark.parametrize(
    ("settings", "why"),
    [
        ({"client_ca": "ca.pem"}, "no client certificate: the Hub refuses the handshake"),
        (
            {"client_ca": "other-ca.pem", "certfile": "client.pem", "keyfile": "client.key"},
            "the Hub's certificate is not from this CA",
        ),
        (
            {"certfile": "client.pem", "keyfile": "client.key"},
            "system CAs do not know the Hub's CA",
        ),
    ],
)
def test_tls_failures_are_named_errors_on_both_drivers(
    pki: Path, tls_hub: str, settings: dict[str, str], why: str
) -> None:
    auth = HubAuth(
        api_url=tls_hub, api_token=TOKEN, **{k: str(pki / v) for k, v in settings.items()}
    )
    with pytest.raises(HubUnavailable, match="could not reach the Hub") as e:
        auth.user_for_token("alice-token")
    assert e.value.url and e.value.url.startswith(tls_hub), why
    with pytest.raises(HubUnavailable, match="could not reach the Hub"):
        asyncio.run(auth.user_for_token("alice-token", sync=False))
    auth.close()


def _doctor(env: dict[str, str]) -> tuple[int, list[str]]:
    """``hubauth doctor`` in ``env``: its exit code and its lines."""
    import io

    from hubauth.cli import main

    out = io.StringIO()
    code = main(["doctor"], environ=env, out=out, err=io.StringIO())
    return code, out.getvalue().splitlines()


def test_doctor_reaches_a_tls_hub_with_the_services_certificates(pki: Path, tls_hub: str) -> None:
    """With internal_ssl's variables the doctor's TLS check passes and names the Hub's
    certificate, and its REST checks use the same certificates (they once read only this
    process's environment, so the API check failed where the TLS check had passed)."""
    env = internal_ssl_env(pki, tls_hub)
    _, lines = _doctor(env)
    (tls,) = [line for line in lines if " tls: " in line]
    assert (
        tls.split()[:2] == ["ok", "tls:"]
        and tls.split()[2].startswith("TLSv1.")
        and "certificate of server" in tls
    ), lines
    (api,) = [line for line in lines if " api: " in line]
    assert api.split()[:2] == ["ok", "api:"] and "JupyterHub 6.1.1" in api, lines
    assert not any("TLS failed" in line for line in lines), lines


def test_doctor_names_the_ca_to_set_when_tls_to_the_hub_fails(pki: Path, tls_hub: str) -> None:
    """A Hub certificate from a CA the service does not trust: FAIL tls naming the variable."""
    env = {
        "JUPYTERHUB_API_TOKEN": TOKEN,
        "JUPYTERHUB_API_URL": tls_hub,
        "JUPYTERHUB_SSL_CLIENT_CA": str(pki / "other-ca.pem"),
    }
    code, lines = _doctor(env)
    assert code == 1
    (tls,) = [line for line in lines if " tls: " in line]
    assert tls.split()[:2] == ["FAIL", "tls:"] and "TLS with 127.0.0.1 failed" in tls, lines
    assert "set JUPYTERHUB_SSL_CLIENT_CA" in tls
