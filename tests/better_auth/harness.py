"""Start the real Better Auth server in server.mjs from pytest fixtures and mint real JWTs.

Synchronous on purpose: fixtures start it once per session and the calls are few.

JWTs come from `GET /api/auth/token` with the session as a bearer token (the `bearer` plugin
turns `Authorization: Bearer <session token>` into a session). `GET /api/auth/get-session` also
returns one in its `set-auth-jwt` header; `get_jwt()` uses the documented /token endpoint and
falls back to that header only if /token answers without a token.
"""

import base64
import fcntl
import json
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from tests.support import free_port

HERE = Path(__file__).resolve().parent
SERVER = HERE / "server.mjs"
ALGORITHMS = ("EdDSA", "ES256", "ES512", "RS256", "PS256")
START_TIMEOUT = 20.0
# Fixed, not random: Better Auth encrypts the JWKS private keys with the secret, and a server
# started later on the same database with another secret fails with "Failed to decrypt private
# key" (HTTP 500 from /token).
DEFAULT_SECRET = "todo-api-tests-better-auth-secret-0123456789"
_install_lock = threading.Lock()


class BetterAuthError(RuntimeError):
    """Installing, migrating, starting or calling the Better Auth server failed."""


@dataclass(frozen=True)
class BetterAuthUser:
    id: str
    email: str
    name: str
    password: str
    session_token: str  # the signed one from `set-auth-token`, usable as a bearer token
    jwt: str


def node_available() -> bool:
    return shutil.which("node") is not None and shutil.which("npm") is not None


def ensure_installed(directory: Path = HERE) -> None:
    """`npm ci` once in `directory` (default: this server's), and again whenever its
    package-lock.json is newer than its node_modules."""
    lock = directory / "package-lock.json"
    # npm writes node_modules/.package-lock.json at the end of an install: its time marks a
    # finished one (a bare node_modules folder may be a half-done install).
    marker = directory / "node_modules" / ".package-lock.json"
    # A file lock, not just a thread lock: pytest-xdist workers may all get here at once.
    with _install_lock, open(directory / ".npm-ci.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
            return
        if not node_available():
            raise BetterAuthError("node and npm are needed for the Better Auth tests")
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            raise BetterAuthError(
                f"npm ci failed in {directory}:\n{result.stdout}\n{result.stderr}"
            )


def _env(database_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "BA_DATABASE_URL": database_url, **extra}


def migrate(database_url: str) -> None:
    """Create or update Better Auth's tables (user, session, account, verification, jwks)."""
    ensure_installed()
    result = subprocess.run(
        ["node", str(SERVER), "--migrate-only"],
        cwd=HERE,
        env=_env(database_url),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise BetterAuthError(f"Better Auth migration failed:\n{result.stdout}\n{result.stderr}")


class BetterAuthServer:
    """One node process running server.mjs on 127.0.0.1; a context manager."""

    def __init__(
        self,
        database_url: str,
        *,
        alg: str = "EdDSA",
        port: int | None = None,
        secret: str | None = None,
        migrate: bool = True,
        reset_keys: bool = True,
        host: str = "127.0.0.1",
        static_dir: Path | None = None,
    ) -> None:
        """`host` names the server in its base URL, hence in the JWTs' `iss` and `aud` (it
        listens on 127.0.0.1 whatever the name; "localhost" gives browsers a second origin for
        the same server). `static_dir` is served under /e2e/ (BA_STATIC_DIR in server.mjs)."""
        if alg not in ALGORITHMS:
            raise ValueError(f"alg must be one of {ALGORITHMS}, got {alg!r}")
        self.database_url = database_url
        self.alg = alg
        self.port = port or free_port()
        self.secret = secret or DEFAULT_SECRET
        self.run_migrations = migrate
        # Better Auth signs with the newest stored key whatever `alg` says, so by default every
        # start deletes the stored keys and mints a new pair of the requested algorithm. Tokens of
        # an earlier server do not verify anyway: its port, hence `iss`/`aud`, differed.
        self.reset_keys = reset_keys
        self.static_dir = static_dir
        self.base_url = f"http://{host}:{self.port}"
        # What the API and this harness connect to: always the address the server listens on.
        self.local_url = f"http://127.0.0.1:{self.port}"
        self.jwks_url = f"{self.local_url}/api/auth/jwks"
        # The jwt plugin defaults both claims to the configured baseURL (no trailing slash).
        self.issuer = self.base_url
        self.audience = self.base_url
        self._process: subprocess.Popen[str] | None = None
        self._client: httpx.Client | None = None
        self._stderr: list[str] = []
        self._ready = threading.Event()
        self._ready_seen = False
        self._readers: list[threading.Thread] = []

    def start(self) -> Self:
        if self._process is not None:
            raise BetterAuthError("the Better Auth server is already running")
        ensure_installed()
        self._stderr, self._ready, self._ready_seen = [], threading.Event(), False
        env = _env(
            self.database_url,
            BA_PORT=str(self.port),
            BA_BASE_URL=self.base_url,
            BA_SECRET=self.secret,
            BA_JWT_ALG=self.alg,
            BA_SKIP_MIGRATE="0" if self.run_migrations else "1",
            BA_RESET_JWKS="1" if self.reset_keys else "0",
            BA_WATCH_STDIN="1",  # node exits if we die: our end of its stdin pipe closes
        )
        if self.static_dir is not None:
            env["BA_STATIC_DIR"] = str(self.static_dir)
        self._process = subprocess.Popen(
            ["node", str(SERVER)],
            cwd=HERE,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # a Ctrl-C at the terminal is pytest's to handle, not node's
        )
        # Read both pipes in the background: stderr so a chatty server never blocks on a full
        # pipe (and for error messages), stdout to spot the READY line.
        self._readers = [
            threading.Thread(target=self._read_stderr, args=(self._process,), daemon=True),
            threading.Thread(target=self._read_stdout, args=(self._process,), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        if not self._ready.wait(START_TIMEOUT) or not self._ready_seen:
            what = (
                "exited before printing READY"
                if self._ready.is_set()
                else f"did not print READY within {START_TIMEOUT:.0f}s"
            )
            self.stop()
            raise BetterAuthError(f"Better Auth server {what}:\n{self.stderr}")
        # Keep no cookies: sessions travel only as bearer tokens, so users never leak into each
        # other's requests, and Better Auth's CSRF origin check (which answers 403 "Missing or
        # null Origin" to a cookie-carrying POST without an Origin header) stays out of the way.
        no_cookies = CookieJar(DefaultCookiePolicy(allowed_domains=[]))
        self._client = httpx.Client(
            base_url=f"{self.local_url}/api/auth", cookies=no_cookies, timeout=30
        )
        return self

    def _read_stderr(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            self._stderr.append(line)

    def _read_stdout(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("READY "):
                self._ready_seen = True
                self._ready.set()
            # Keep reading after READY: a full pipe would block the server's next console.log.
        # End-of-file before READY means the server died: let start() fail at once.
        self._ready.set()

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        assert process.stdin is not None
        process.stdin.close()
        for reader in self._readers:
            reader.join(2)  # the pipes reach end-of-file now that node has exited

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            raise BetterAuthError("the Better Auth server is not running")
        return self._client

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TransportError as error:
            # Typically the server crashed mid-request; its stderr says why.
            raise BetterAuthError(
                f"{method} {path}: {error!r}\nserver stderr (tail):\n{self.stderr[-2000:]}"
            ) from error
        if response.is_error:
            # A 500 has an empty body; the reason is in the server's log.
            log = ""
            if response.status_code >= 500:
                log = f"\nserver stderr (tail):\n{self.stderr[-2000:]}"
            raise BetterAuthError(
                f"{response.request.method} {response.request.url} -> "
                f"{response.status_code}: {response.text}{log}"
            )
        return response

    def sign_up(self, email: str, password: str, name: str) -> BetterAuthUser:
        body = {"email": email, "password": password, "name": name}
        return self._session(self._request("POST", "/sign-up/email", json=body), password)

    def sign_in(self, email: str, password: str) -> BetterAuthUser:
        """A new session (and JWT) for an existing user."""
        body = {"email": email, "password": password}
        return self._session(self._request("POST", "/sign-in/email", json=body), password)

    def _session(self, response: httpx.Response, password: str) -> BetterAuthUser:
        body = response.json()
        # The bearer plugin's header carries the signed token; the body's bare one works too.
        session_token = response.headers.get("set-auth-token") or body["token"]
        user = body["user"]
        jwt = self._jwt(session_token)
        return BetterAuthUser(user["id"], user["email"], user["name"], password, session_token, jwt)

    def _jwt(self, session_token: str) -> str:
        headers = {"Authorization": f"Bearer {session_token}"}
        token = self._request("GET", "/token", headers=headers).json().get("token")
        if not token:  # never seen; the same JWT also comes in get-session's header
            token = self._request("GET", "/get-session", headers=headers).headers.get(
                "set-auth-jwt"
            )
        if not isinstance(token, str) or not token:
            raise BetterAuthError("Better Auth returned no JWT for the session")
        encoded = token.split(".")[0]
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        if header.get("alg") != self.alg:
            raise BetterAuthError(
                f"asked for {self.alg} but Better Auth signed with {header.get('alg')}: "
                "a key of another algorithm is stored (start with reset_keys=True)"
            )
        return token

    def get_jwt(self, user: BetterAuthUser) -> str:
        """A newly signed JWT for the user's session.

        iat/exp have one-second resolution and EdDSA and RS256 signatures are deterministic, so
        two calls within the same second may return the very same string.
        """
        return self._jwt(user.session_token)

    def jwks(self) -> dict[str, object]:
        document: dict[str, object] = self._request("GET", "/jwks").json()
        return document

    def delete_user(self, user: BetterAuthUser) -> None:
        """Delete through Better Auth's own endpoint; it wants the password (or a fresh session)."""
        response = self._request(
            "POST",
            "/delete-user",
            json={"password": user.password},
            headers={"Authorization": f"Bearer {user.session_token}"},
        )
        if not response.json().get("success"):
            raise BetterAuthError(f"Better Auth did not delete the user: {response.text}")
