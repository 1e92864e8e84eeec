"""Problem `type` URIs resolve to documentation: every type the API can answer with is in the
catalog (backend/problems.py), /problems serves a section for each, and docs/errors.md is the
same catalog."""

import importlib
import pkgutil
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

import backend
from backend import problems
from backend.errors import ProblemError
from tests.support import TokenFactory

DOCS = Path(__file__).resolve().parent.parent / "docs" / "errors.md"


def all_subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= all_subclasses(sub)
    return found


def test_docs_errors_md_is_the_catalog() -> None:
    assert DOCS.read_text() == problems.markdown(), (
        "docs/errors.md differs from backend/problems.py: regenerate it with\n"
        'uv run python -c "from backend import problems; '
        "open('docs/errors.md','w').write(problems.markdown())\""
    )


def test_every_problem_class_has_a_documented_type() -> None:
    for module in pkgutil.walk_packages(backend.__path__, "backend."):
        importlib.import_module(module.name)
    classes = all_subclasses(ProblemError)
    assert len(classes) > 15  # the walk found the domain errors
    undocumented = {c.__name__: c.slug for c in classes if c.slug not in problems.SLUGS}
    assert not undocumented


async def follow(client: httpx.AsyncClient, response: httpx.Response) -> None:
    """The problem's type resolves, against the request URL, to its section of /problems."""
    problem: dict[str, Any] = response.json()
    assert problem["type"] != "about:blank", problem
    target = urlsplit(urljoin(str(response.request.url), problem["type"]))
    page = await client.get(target.path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert f'<section id="{target.fragment}">' in page.text


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/no/such/route", {}, 404),
        ("PUT", "/todos", {}, 405),
        ("POST", "/todos", {"content": b"x" * (2 << 20)}, 413),
        ("POST", "/todos", {"content": b"title=x"}, 415),
        ("POST", "/todos", {"json": {}}, 422),
        ("GET", "/todos", {"params": {"cursor": "made-up"}}, 422),
        ("GET", "/todos/00000000-0000-7000-8000-000000000000", {}, 404),
        ("POST", "/tags", {"json": {"name": "twice"}}, 409),
    ],
)
async def test_answered_problem_types_resolve(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
) -> None:
    headers = tokens.headers("problem-reader")
    if status == 409:
        await client.post("/tags", json={"name": "twice"}, headers=headers)
    if "content" in kwargs:
        headers = {**headers, "Content-Type": "text/plain" if status == 415 else "application/json"}
    response = await client.request(method, path, headers=headers, **kwargs)

    assert response.status_code == status
    await follow(client, response)


async def test_401_types_resolve(client: httpx.AsyncClient) -> None:
    await follow(client, await client.get("/todos"))
    await follow(client, await client.get("/todos", headers={"Authorization": "Bearer x.y.z"}))


async def test_the_page_needs_no_token(client: httpx.AsyncClient) -> None:
    page = await client.get("/problems")

    assert page.status_code == 200
    for slug in problems.SLUGS:
        assert f'id="{slug}"' in page.text
