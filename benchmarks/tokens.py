"""Tokens as Better Auth's `jwt` plugin issues them: EdDSA (Ed25519) with a `kid`, published
by a tiny local JWKS endpoint that both the API and the baseline fetch their key from."""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from benchmarks.seed import BenchUser

# Better Auth sets iss and aud to its base URL.
ISSUER = AUDIENCE = "http://localhost:3000"
KID = "bench-ed25519"


class SigningKey:
    def __init__(self) -> None:
        self._key = Ed25519PrivateKey.generate()

    def jwks(self) -> dict[str, object]:
        jwk = OKPAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        # No `alg`: Better Auth's JWKS entries may omit it, and the API must infer EdDSA.
        return {"keys": [{**jwk, "kid": KID, "use": "sig"}]}

    def mint(self, user: BenchUser, lifetime: int = 3600) -> str:
        now = int(time.time())
        claims = {
            "sub": user.id,
            "email": user.email,
            "name": user.name,
            "emailVerified": False,
            "image": None,
            "iat": now,
            "exp": now + lifetime,
            "iss": ISSUER,
            "aud": AUDIENCE,
        }
        return jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": KID})


@contextmanager
def serve_jwks(key: SigningKey) -> Iterator[str]:
    """Serve the key set on a free loopback port (in a thread) and yield its URL."""
    body = json.dumps(key.jwks()).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # keep the benchmark output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/auth/jwks"
    finally:
        server.shutdown()
        server.server_close()
