from fastapi import APIRouter

from backend.auth.dependencies import CurrentUser
from backend.db import SessionDep
from backend.errors import NotFound
from backend.openapi import AUTH_RESPONSES
from backend.users.repository import UserRepository
from backend.users.schemas import UserRead

router = APIRouter(prefix="/users", tags=["users"], responses=AUTH_RESPONSES)


@router.get("/me", operation_id="getCurrentUser", summary="The caller's profile")
async def read_me(user: CurrentUser, session: SessionDep) -> UserRead:
    row = await UserRepository(session, user.id).get()
    if row is None:  # provisioned in this very request, so only a concurrent delete gets here
        raise NotFound("The user no longer exists.")
    return UserRead.model_validate(row)
