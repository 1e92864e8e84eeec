"""Real keys, real tokens and a real JWKS endpoint for the authentication tests."""

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ISSUER = "https://auth.example.test"
AUDIENCE = "https://auth.example.test"

# Every rejected token gets this very body: it never says which check failed.
INVALID_TOKEN_BODY = {
    "type": "/problems#invalid-token",
    "title": "Unauthorized",
    "status": 401,
    "detail": "The bearer token is invalid or expired.",
}

ALGORITHMS = ("EdDSA", "ES256", "ES512", "RS256", "PS256")


def generate_private_key(alg: str) -> Any:
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "ES512":
        return ec.generate_private_key(ec.SECP521R1())
    if alg in {"RS256", "PS256"}:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(alg)


@dataclass(frozen=True)
class SigningKey:
    """A private key as the identity provider holds it, and its public JWK."""

    alg: str
    private_key: Any
    kid: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def generate(cls, alg: str) -> "SigningKey":
        return cls(alg, generate_private_key(alg))

    @property
    def public_key(self) -> Any:
        return self.private_key.public_key()

    def jwk(self, *, with_alg: bool = True) -> dict[str, Any]:
        """The JWKS entry. Without `alg` it looks like Better Auth's: kty, crv, x, kid."""
        entry: dict[str, Any] = jwt.get_algorithm_by_name(self.alg).to_jwk(
            self.public_key, as_dict=True
        )
        entry["kid"] = self.kid
        if with_alg:
            entry.update(alg=self.alg, use="sig")
        return entry

    def sign(
        self,
        claims: dict[str, Any] | None = None,
        *,
        kid: str | None = "",
        alg: str | None = None,
    ) -> str:
        """A token signed with this key; `kid=""` means this key's kid, None means no kid."""
        headers = {} if kid is None else {"kid": kid or self.kid}
        return jwt.encode(
            claims if claims is not None else make_claims(),
            self.private_key,
            algorithm=alg or self.alg,
            headers=headers,
        )


def make_claims(sub: str | None = None, **overrides: Any) -> dict[str, Any]:
    """Claims shaped like Better Auth's `jwt` plugin; an override of None drops the claim."""
    now = int(time.time())
    sub = sub or f"user-{uuid.uuid4().hex[:12]}"
    claims: dict[str, Any] = {
        "sub": sub,
        "email": f"{sub}@example.com",
        "name": "Ada",
        "emailVerified": True,
        "image": None,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 900,
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def forge_hs256(claims: dict[str, Any], secret: bytes, *, kid: str | None = None) -> str:
    """An HS256 token computed by hand: PyJWT refuses to use a public key as an HMAC secret,
    an attacker does not."""
    header: dict[str, Any] = {"alg": "HS256", "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def unsigned(claims: dict[str, Any], *, kid: str | None = None) -> str:
    header: dict[str, Any] = {"alg": "none", "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    return f"{b64url_json(header)}.{b64url_json(claims)}."


def assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == INVALID_TOKEN_BODY


class JwksServer:
    """A JWKS endpoint on 127.0.0.1 whose key set, status and latency a test controls, and
    which counts the requests it receives."""

    path = "/api/auth/jwks"

    def __init__(self) -> None:
        self.keys: list[Any] = []  # JWKS entries, well-formed or not
        self.status = 200
        self.body: bytes | None = None  # served instead of the key set when set
        self.delay = 0.0
        self._requests = 0
        self._lock = threading.Lock()
        self._stopped = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server._lock:
                    server._requests += 1
                    status, delay = server.status, server.delay
                    body = server.body or json.dumps({"keys": server.keys}).encode()
                if delay:
                    time.sleep(delay)
                if status != 200:
                    body = b'{"error": "unavailable"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        # A short poll interval: stopping waits for at most one poll.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}{self.path}"

    @property
    def requests(self) -> int:
        with self._lock:
            return self._requests

    def publish(self, *keys: SigningKey, with_alg: bool = True) -> None:
        """Serve exactly these keys from now on."""
        with self._lock:
            self.keys = [key.jwk(with_alg=with_alg) for key in keys]

    def add(self, key: SigningKey, *, with_alg: bool = True) -> None:
        with self._lock:
            self.keys = [*self.keys, key.jwk(with_alg=with_alg)]

    def stop(self) -> None:
        """Take the endpoint down: connections are refused from now on."""
        if not self._stopped:
            self._stopped = True
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join()
