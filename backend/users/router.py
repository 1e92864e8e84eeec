"""HTTP endpoints for /users."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from backend.openapi import AUTH_RESPONSES
from backend.responses import json_response
from backend.users.dependencies import CurrentUser
from backend.users.schemas import UserRead
from backend.users.service import UserService

router = APIRouter(prefix="/users", tags=["users"], responses=AUTH_RESPONSES)


async def user_service(request: Request) -> UserService:
    service: UserService = request.app.state.users
    return service


Users = Annotated[UserService, Depends(user_service)]


@router.get(
    "/me", operation_id="getCurrentUser", summary="The caller's profile", response_model=UserRead
)
async def read_me(user: CurrentUser, users: Users) -> object:
    return json_response(await users.profile(user.id))
