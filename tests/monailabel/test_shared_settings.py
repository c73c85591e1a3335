"""The shipped settings for a shared server (monailabel_app/shared-server.env): the real server starts with them
through scripts/start_monailabel.sh, and then sign-in is enforced, CORS is limited and /logs is off (issue 21, 10).

Sign-in is verified as MONAI Label does it with Keycloak: tokens are RS256 JWTs checked against the public key
the realm URL serves. The realm here is a small HTTP server on 127.0.0.1 serving a freshly made RSA key in
Keycloak's realm format (``{"public_key": <base64 DER>}``); the only two site-specific lines of the file (realm
address, viewer origins) are pointed at local values, everything else is the shipped file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from ml_server import APP, CASES, HAVE_MONAILABEL, REPO, Server, free_port, launch, requests, stop

pytestmark = pytest.mark.monailabel

VIEWER = "http://127.0.0.1:3000"  # the one origin the test server allows
USER_ROLE, ADMIN_ROLE = "monailabel-user", "monailabel-admin"


@pytest.fixture(scope="module")
def key():
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def realm(key) -> Iterator[str]:
    """A Keycloak-style realm endpoint serving the public key; yields its URL."""
    from cryptography.hazmat.primitives import serialization

    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    body = json.dumps({"realm": "test", "public_key": base64.b64encode(der).decode()}).encode()

    class Realm(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Realm)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/realms/test"
    finally:
        server.shutdown()


def _claims(roles: tuple[str, ...]) -> dict:
    return {"preferred_username": "annotator", "realm_access": {"roles": list(roles)}, "exp": int(time.time()) + 3600}


def token(key, *roles: str) -> dict[str, str]:
    """A bearer header for a realm token (RS256, signed with the realm's key) holding ``roles``."""
    import jwt

    return {"Authorization": f"Bearer {jwt.encode(_claims(roles), key, algorithm='RS256')}"}


def forged_token(public_pem: bytes, *roles: str) -> dict[str, str]:
    """An HS256 token 'signed' with the realm's public key as HMAC secret (what a server that takes the algorithm
    from the token would accept); written by hand, as PyJWT refuses to make one."""
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signed = f"{part(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{part(json.dumps(_claims(roles)).encode())}"
    signature = hmac.new(public_pem, signed.encode(), hashlib.sha256).digest()
    return {"Authorization": f"Bearer {signed}.{part(signature)}"}


@pytest.fixture(scope="module")
def shared_server(studies: Path, realm: str, key, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not HAVE_MONAILABEL:
        pytest.skip("needs the MONAI Label environment")
    shipped = (APP / "shared-server.env").read_text()
    assert re.search(r"^MONAI_LABEL_AUTH_ENABLE=true$", shipped, re.M), shipped
    local = re.sub(r"^MONAI_LABEL_AUTH_REALM_URI=.*$", f"MONAI_LABEL_AUTH_REALM_URI={realm}", shipped, flags=re.M)
    local = re.sub(r"^VOXCAUSE_CORS_ORIGINS=.*$", f"VOXCAUSE_CORS_ORIGINS={VIEWER}", local, flags=re.M)
    assert local.count(realm) == 1 and local.count(VIEWER) == 1, "the shipped file lost its realm or CORS line"
    work = tmp_path_factory.mktemp("shared-server")
    settings = work / "shared-server.env"
    settings.write_text(local)
    running = launch(str(studies), work, {}, files_at=studies, start_script=REPO / "scripts" / "start_monailabel.sh",
                     env={"VOXCAUSE_ML_SETTINGS": str(settings), "VOXCAUSE_ML_VENV": sys.prefix},
                     probe_headers=token(key, USER_ROLE))
    try:
        yield running
    finally:
        stop(running.process)


def test_every_request_needs_a_valid_token(shared_server, key):
    from cryptography.hazmat.primitives import serialization

    assert shared_server.get("/info/").status_code == 401
    assert shared_server.post(f"/infer/segmentation?image={CASES[0][0]}").status_code == 401
    assert shared_server.get("/queue/").status_code == 401
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert shared_server.get("/info/", headers=forged_token(public_pem, USER_ROLE)).status_code == 401
    assert shared_server.get("/info/", headers=token(key)).status_code == 403  # signed in, no role
    assert shared_server.get("/info/", headers=token(key, USER_ROLE)).status_code == 200


def test_a_signed_in_annotator_runs_a_task(shared_server, key):
    response = shared_server.post(f"/infer/segmentation?image={CASES[0][0]}", headers=token(key, USER_ROLE),
                                  data={"params": "{}"})
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("multipart")
    assert shared_server.get("/queue/", headers=token(key, USER_ROLE)).json() == {"requests": []}


def test_logs_are_not_served_even_to_an_admin(shared_server, key):
    assert shared_server.get("/logs/", headers=token(key, USER_ROLE, ADMIN_ROLE)).status_code == 404


def test_browsers_may_call_only_from_the_listed_origin(shared_server):
    def preflight(origin: str):
        return requests.options(shared_server.url + "/info/", timeout=30, headers={
            "Origin": origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"})

    allowed, other = preflight(VIEWER), preflight("https://elsewhere.example.org")
    assert allowed.status_code == 200 and allowed.headers.get("access-control-allow-origin") == VIEWER
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
