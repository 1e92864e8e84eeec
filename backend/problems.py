"""The catalog of problem types: what every problem's `type` URI names.

A type URI is `/problems#<slug>`, a reference relative to the API's own address (RFC 9457
allows relative type URIs; a client resolves it against the request URL). It resolves to that
type's section of the page the API serves at `/problems`, written from this catalog — as is
docs/errors.md, which a test keeps identical to `markdown()`. So the documentation a `type`
points at is always the running version's.
"""

import html
from dataclasses import dataclass
from functools import cache

from starlette.responses import HTMLResponse

TYPE_URI_BASE = "/problems#"


@dataclass(frozen=True, slots=True)
class ProblemType:
    slug: str
    status: int
    title: str
    meaning: str  # when the API answers it, and what a client should do


PROBLEM_TYPES: tuple[ProblemType, ...] = (
    ProblemType(
        "missing-credentials", 401, "Unauthorized",
        "The request has no `Authorization: Bearer <token>` header. Send the JWT your auth "
        "server issued (Better Auth's `/api/auth/token`).",
    ),
    ProblemType(
        "invalid-token", 401, "Unauthorized",
        "The bearer token cannot be used: malformed, not signed by a trusted key, expired, not "
        "yet valid, for another issuer or audience, larger than 8 KiB, with unusable claims, or "
        "its user has been deleted. The body never says which check failed. Get a new token; "
        "`WWW-Authenticate` carries the Bearer challenge.",
    ),
    ProblemType(
        "metrics-token-required", 401, "Unauthorized",
        "`/metrics` in production needs `Authorization: Bearer <METRICS_TOKEN>`.",
    ),
    ProblemType(
        "not-found", 404, "Not Found",
        "No such resource — or it belongs to another user: the two answers are identical by "
        "design. Also the answer for an unknown path.",
    ),
    ProblemType(
        "method-not-allowed", 405, "Method Not Allowed",
        "The path exists but not with this method; `Allow` lists the methods it has.",
    ),
    ProblemType(
        "conflict", 409, "Conflict",
        "The request conflicts with the current state: a request with the same Idempotency-Key "
        "is still being processed (retry later); the token's e-mail address belongs to another "
        "user; you already have a tag with this name (names ignore case); you have 1,000 tags "
        "already; or a tag named in the request was deleted while it ran (retry). `detail` "
        "says which.",
    ),
    ProblemType(
        "precondition-failed", 412, "Precondition Failed",
        "`If-Match` names a version the todo no longer has: someone changed it since you read "
        "it. GET it again (new `ETag`), reapply your change, and retry.",
    ),
    ProblemType(
        "payload-too-large", 413, "Content Too Large",
        "The body is larger than `MAX_BODY_BYTES` (1 MiB by default).",
    ),
    ProblemType(
        "unsupported-media-type", 415, "Unsupported Media Type",
        "Send request bodies as `application/json`.",
    ),
    ProblemType(
        "validation-error", 422, "Unprocessable Content",
        "The request does not fit the schema: `errors` lists each invalid field (`loc`, "
        "`msg`, `type`; at most 20 entries). Unknown fields are errors too.",
    ),
    ProblemType(
        "unprocessable-content", 422, "Unprocessable Content",
        "The request fits the schema but cannot be carried out: a `cursor` this API did not "
        "issue for this sort order, an Idempotency-Key reused with another body, a recurrence "
        "without `due_at`, a `remind_at` after `due_at`, a recurring todo created completed, "
        "`DELETE /todos` without `completed=true`. `detail` names the problem.",
    ),
    ProblemType(
        "resync-required", 410, "Gone",
        "The sync token (`since` of GET /todos/changes, `Last-Event-ID` of GET /events) can "
        "no longer be answered exactly: it is older than the change log keeps "
        "(`CHANGES_RETENTION_DAYS`, 30 by default), was issued for another user, or comes "
        "from another database. Sync from the beginning (omit `since`) and keep its `next`.",
    ),
    ProblemType(
        "too-many-streams", 429, "Too Many Requests",
        "You have `EVENTS_MAX_STREAMS_PER_USER` (5 by default) event streams open on this "
        "server instance already. Close one (each browser tab needs only one), or retry after "
        "`Retry-After` seconds.",
    ),
    ProblemType(
        "too-many-idempotency-keys", 429, "Too Many Requests",
        "You hold 10,000 live Idempotency-Keys (each is kept 24 h). `Retry-After` says when "
        "the oldest expires; until then, send POSTs without a key or with a key you used.",
    ),
    ProblemType(
        "request-header-fields-too-large", 431, "Request Header Fields Too Large",
        "The request's headers together exceed `HTTP_MAX_HEADER_BYTES` (32 KiB by default); "
        "the connection is closed.",
    ),
    ProblemType(
        "internal-server-error", 500, "Internal Server Error",
        "A bug in the API. The response carries an `X-Request-ID`; the server's log has the "
        "details under it. Please report it.",
    ),
    ProblemType(
        "service-unavailable", 503, "Service Unavailable",
        "The database cannot be reached in time, or this instance is shutting down. Retry "
        "after `Retry-After` seconds; nothing was changed.",
    ),
)  # fmt: skip
SLUGS = frozenset(problem.slug for problem in PROBLEM_TYPES)


def type_uri(slug: str) -> str:
    """The type URI of `slug`; `about:blank` (RFC 9457: "just the status code") for a slug
    missing from the catalog, which tests/test_problems.py does not let happen."""
    return TYPE_URI_BASE + slug if slug in SLUGS else "about:blank"


def markdown() -> str:
    """docs/errors.md."""
    lines = [
        "# Errors",
        "",
        "Every error is an RFC 9457 problem: `Content-Type: application/problem+json` and a body",
        "with `type`, `title`, `status` and `detail` (and `errors` for validation problems). The",
        "`type` is the stable identifier to branch on: `/problems#<slug>`, a reference relative",
        "to the API's address that resolves to the section below in the page the API serves at",
        "`/problems`. This file is generated from `backend/problems.py`; a test keeps them equal.",
        "",
        "| status | type | title |",
        "| --- | --- | --- |",
        *(f"| {p.status} | [`{type_uri(p.slug)}`](#{p.slug}) | {p.title} |" for p in PROBLEM_TYPES),
    ]
    for p in PROBLEM_TYPES:
        lines += ["", f"## {p.slug}", "", f"**{p.status} {p.title}.** {p.meaning}"]
    return "\n".join(lines) + "\n"


@cache
def page() -> str:
    """The HTML the API serves at /problems: one section per type, its id the slug."""
    sections = "\n".join(
        f'<section id="{p.slug}"><h2>{p.slug}</h2><p><strong>{p.status} '
        f"{html.escape(p.title)}.</strong> {_inline(p.meaning)}</p></section>"
        for p in PROBLEM_TYPES
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>Todo API problem types</title></head><body><h1>Problem types</h1>"
        f"{sections}</body></html>"
    )


def _inline(text: str) -> str:
    """`code` spans as <code>; everything else escaped."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts))


async def problems_endpoint() -> HTMLResponse:
    """GET /problems: where every `type` URI points (public, like /docs)."""
    return HTMLResponse(page(), headers={"Cache-Control": "public, max-age=3600"})
