"""Development-mode tokens: with no AUTH_* configured (and never in production) the API
verifies tokens signed by a local Ed25519 key kept in the data directory, and
`todo-api token EMAIL` mints them, so a newcomer can curl the API within a minute."""

import hashlib
import os
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backend.auth.keys import VerificationKey

DEV_ISSUER = DEV_AUDIENCE = "todo-api-development"
DEV_TOKEN_LIFETIME = 24 * 3600


class DevelopmentKey:
    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key

    @classmethod
    def load_or_create(cls, data_dir: Path) -> "DevelopmentKey":
        path = data_dir / "dev-signing-key.pem"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            # O_EXCL: two workers starting together keep whichever key was written first.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "wb") as file:
                    file.write(pem)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        return cls(key)

    @property
    def verification_key(self) -> VerificationKey:
        return VerificationKey(
            kid=None, algorithms=frozenset({"EdDSA"}), key=self._private_key.public_key()
        )

    def mint(self, email: str, *, lifetime: int = DEV_TOKEN_LIFETIME) -> str:
        """A token for `email`; the same e-mail always maps to the same user id."""
        now = int(time.time())
        claims = {
            "sub": "dev-" + hashlib.sha256(email.lower().encode()).hexdigest()[:24],
            "email": email,
            "name": email.split("@", 1)[0],
            "emailVerified": False,
            "iss": DEV_ISSUER,
            "aud": DEV_AUDIENCE,
            "iat": now,
            "exp": now + lifetime,
        }
        return jwt.encode(claims, self._private_key, algorithm="EdDSA")
