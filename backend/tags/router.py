"""HTTP endpoints for /tags: parse the request, call one TagService method for the caller,
turn the record it returns into a response."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from backend.db import Database
from backend.openapi import AUTH_RESPONSES, ResponseSpec, problem
from backend.responses import json_response
from backend.tags.models import MAX_TAGS_PER_USER
from backend.tags.schemas import TagCreate, TagList, TagRead, TagUpdate
from backend.tags.service import TagService
from backend.users.dependencies import current_user

router = APIRouter(
    prefix="/tags",
    tags=["tags"],
    responses={**AUTH_RESPONSES, 422: problem("The request is invalid.")},
)

NOT_FOUND: ResponseSpec = {404: problem("No tag with this id (or it belongs to someone else).")}
NAME_TAKEN: ResponseSpec = {409: problem("You already have a tag with this name (any case).")}
LOCATION = {"Location": {"required": True, "schema": {"type": "string"}}}


async def tag_service(request: Request) -> TagService:
    """The caller's tags (authenticating as backend.todos.router.todo_service does)."""
    user = await current_user(request)
    database: Database = request.app.state.db
    return TagService(database, user.id, request.app.state.events.changed)


Tags = Annotated[TagService, Depends(tag_service)]


@router.get("", operation_id="listTags", summary="All your tags", response_model=TagList)
async def list_tags(tags: Tags) -> Any:
    return json_response({"items": await tags.all()})


@router.post(
    "",
    status_code=201,
    operation_id="createTag",
    summary="Create a tag",
    response_model=TagRead,
    responses={
        201: {"headers": LOCATION},
        409: problem(
            f"You already have a tag with this name (any case), or {MAX_TAGS_PER_USER} tags."
        ),
    },
)
async def create_tag(data: TagCreate, tags: Tags) -> Any:
    tag = await tags.create(data.to_record())
    return json_response(tag, 201, {"Location": f"/tags/{tag.id}"})


@router.get(
    "/{tag_id}",
    operation_id="getTag",
    summary="One tag",
    response_model=TagRead,
    responses=NOT_FOUND,
)
async def get_tag(tag_id: UUID, tags: Tags) -> Any:
    return json_response(await tags.get(tag_id))


@router.patch(
    "/{tag_id}",
    operation_id="updateTag",
    summary="Rename or recolor a tag",
    description="A rename changes the ETag of every todo carrying the tag.",
    response_model=TagRead,
    responses={**NOT_FOUND, **NAME_TAKEN},
)
async def update_tag(tag_id: UUID, changes: TagUpdate, tags: Tags) -> Any:
    return json_response(await tags.update(tag_id, changes.to_record()))


@router.delete(
    "/{tag_id}",
    status_code=204,
    operation_id="deleteTag",
    summary="Delete a tag",
    description="Removes it from every todo carrying it (their ETags change).",
    responses=NOT_FOUND,
)
async def delete_tag(tag_id: UUID, tags: Tags) -> Response:
    await tags.delete(tag_id)
    return Response(status_code=204)
