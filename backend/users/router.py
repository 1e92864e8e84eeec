from fastapi import APIRouter

from backend.auth.dependencies import CurrentUser
from backend.db import ConnectionDep
from backend.openapi import AUTH_RESPONSES
from backend.users.repository import UserGone, UserRepository
from backend.users.schemas import UserRead

router = APIRouter(prefix="/users", tags=["users"], responses=AUTH_RESPONSES)


@router.get("/me", operation_id="getCurrentUser", summary="The caller's profile")
async def read_me(user: CurrentUser, connection: ConnectionDep) -> UserRead:
    row = await UserRepository(connection, user.id).get()
    if row is None:  # known to this process, since deleted
        raise UserGone()
    return UserRead.model_validate(row)
