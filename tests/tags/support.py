"""Helpers for the /tags tests: create tags and read them back, read a todo's ETag."""

from typing import Any

import httpx

from tests.todos.support import Headers

Tag = dict[str, Any]


async def create_tag(client: httpx.AsyncClient, headers: Headers, name: str, **fields: Any) -> Tag:
    response = await client.post("/tags", json={"name": name, **fields}, headers=headers)
    assert response.status_code == 201, response.text
    tag: Tag = response.json()
    return tag


async def list_tags(client: httpx.AsyncClient, headers: Headers) -> list[Tag]:
    response = await client.get("/tags", headers=headers)
    assert response.status_code == 200, response.text
    items: list[Tag] = response.json()["items"]
    return items


async def tag_names(client: httpx.AsyncClient, headers: Headers) -> list[str]:
    return [tag["name"] for tag in await list_tags(client, headers)]


async def etag_of(client: httpx.AsyncClient, headers: Headers, todo_id: str) -> str:
    response = await client.get(f"/todos/{todo_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.headers["etag"]


async def tags_of(client: httpx.AsyncClient, headers: Headers, todo_id: str) -> list[str]:
    response = await client.get(f"/todos/{todo_id}", headers=headers)
    assert response.status_code == 200, response.text
    names: list[str] = response.json()["tags"]
    return names


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    return problem
