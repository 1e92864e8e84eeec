"""HTTP endpoints for sync: GET /todos/changes (the change feed, page by page) and GET /events
(the same changes, and reminders, pushed as Server-Sent Events)."""

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from starlette.responses import Response

from backend.errors import ServiceUnavailable
from backend.openapi import AUTH_RESPONSES, ResponseSpec, problem
from backend.query import parse_query, query_parameters
from backend.responses import json_response
from backend.settings import Settings
from backend.sync.hub import EventHub
from backend.sync.schemas import ChangesPage, ChangesQuery
from backend.sync.service import SyncService
from backend.sync.streams import EventStreamResponse, events
from backend.users.dependencies import current_user

router = APIRouter(tags=["sync"], responses=AUTH_RESPONSES)

RESYNC: ResponseSpec = {
    410: problem("The token can no longer be answered exactly: sync from the beginning.")
}
LAST_EVENT_ID_DOC = "The id of the last event received: the stream resumes right after it."
STREAM_DOC = """A live feed of your changes as `text/event-stream`:

- `event: todo`, `data:` a change as in GET /todos/changes, `id:` the token after it (pass it
  as `Last-Event-ID` to resume, or as `since` to GET /todos/changes);
- `event: reminder`, `data:` `{"op": "reminder", "remind_at", "todo"}` when a reminder comes
  due (once per reminder, whichever instance serves the stream);
- a `: heartbeat` comment every 15 s; a `retry:` hint when the stream ends (shutdown, token
  expiry) — reconnect after it, with a fresh token and `Last-Event-ID`.
"""


@router.get(
    "/todos/changes",
    operation_id="listTodoChanges",
    summary="What changed in your todos since a token",
    response_model=ChangesPage,
    responses={**RESYNC, 422: problem("The request is invalid.")},
    openapi_extra={"parameters": query_parameters(ChangesQuery)},
)
async def list_changes(request: Request) -> Any:
    user = await current_user(request)
    query = parse_query(ChangesQuery, request.query_params)
    sync = SyncService(request.app.state.db, user.id)
    return json_response(await sync.changes(query.since, query.limit))


@router.get(
    "/events",
    operation_id="streamEvents",
    summary="Your changes and reminders, live (Server-Sent Events)",
    description=STREAM_DOC,
    response_class=EventStreamResponse,
    responses={
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
        **RESYNC,
        429: problem("You have as many streams open on this server as allowed."),
        503: problem("This instance is shutting down (or the database is down): reconnect."),
    },
)
async def stream_events(
    request: Request,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=64, description=LAST_EVENT_ID_DOC)
    ] = None,
) -> Response:
    user = await current_user(request)
    hub: EventHub = request.app.state.events
    if hub.closing:
        raise ServiceUnavailable("This instance is shutting down; connect again.")
    settings: Settings = request.app.state.settings
    sync = SyncService(request.app.state.db, user.id)
    after = sync.position(last_event_id)
    # Subscribed before reading where to start: a change committed meanwhile wakes it.
    subscription = hub.subscribe(user.id)
    try:
        if after is None:
            subscription.position = await sync.head()  # a new stream starts from now
        else:
            await sync.read(after, 0)  # 410 now, as a status, if it cannot resume exactly
            subscription.position = after
    except BaseException:
        hub.unsubscribe(subscription)
        raise
    stream = events(
        sync,
        hub,
        subscription,
        heartbeat_seconds=settings.events_heartbeat_seconds,
        expires_at=user.token_expires_at,
    )
    # no-transform / X-Accel-Buffering: proxies (nginx, compression) must not hold events back.
    headers = {"Cache-Control": "no-store, no-transform", "X-Accel-Buffering": "no"}
    return EventStreamResponse(stream, headers=headers)
