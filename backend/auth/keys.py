"""Verification keys: a public key plus the algorithms it may verify.

The algorithm is chosen by the key, never by the token. A token whose `alg` does not fit its
key's type is rejected before any signature check, which closes the classic forgery where an
HS256 token is "verified" with the public key's bytes as the HMAC secret.
"""

from dataclasses import dataclass
from typing import Any

from jwt import PyJWK
from jwt.exceptions import PyJWTError

_RSA = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_BY_CURVE = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
_OKP_BY_CURVE = {"Ed25519": "EdDSA"}
ASYMMETRIC_ALGORITHMS = _RSA | set(_EC_BY_CURVE.values()) | set(_OKP_BY_CURVE.values())


@dataclass(frozen=True)
class VerificationKey:
    kid: str | None  # None: the key answers to any kid (shared secret, development key)
    algorithms: frozenset[str]
    key: Any  # a `cryptography` key object, or bytes for the shared secret

    def accepts(self, kid: str | None, alg: str) -> bool:
        return alg in self.algorithms and (kid is None or self.kid is None or kid == self.kid)


def algorithms_for_jwk(jwk: dict[str, Any]) -> frozenset[str]:
    """The algorithms a public JWK may verify: its `alg` if it states one, else inferred from
    `kty`/`crv` (Better Auth's JWKS entries may omit `alg`). Empty means: unusable."""
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "RSA":
        family = _RSA
    elif kty == "EC" and crv in _EC_BY_CURVE:
        family = frozenset({_EC_BY_CURVE[crv]})
    elif kty == "OKP" and crv in _OKP_BY_CURVE:
        family = frozenset({_OKP_BY_CURVE[crv]})
    else:  # symmetric ("oct") or unknown keys have no place in a public key set
        return frozenset()
    stated = jwk.get("alg")
    if stated is None:
        return family
    return frozenset({stated}) & family


def key_from_jwk(jwk: dict[str, Any]) -> VerificationKey | None:
    """Parse one JWKS entry; None for keys this service cannot or must not use."""
    if jwk.get("use", "sig") != "sig":
        return None
    try:
        algorithms = algorithms_for_jwk(jwk)
        if not algorithms:
            return None
        parsed = PyJWK(jwk, algorithm=min(algorithms))
    # One malformed entry (missing or undecodable parameters, odd types) must not take down
    # the whole key set: PyJWK raises InvalidKeyError, and KeyError/TypeError for some shapes.
    except (PyJWTError, KeyError, TypeError, ValueError):
        return None
    kid = jwk.get("kid")
    return VerificationKey(
        kid=kid if isinstance(kid, str) else None, algorithms=algorithms, key=parsed.key
    )
