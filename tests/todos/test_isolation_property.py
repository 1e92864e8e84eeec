"""Isolation as a property: three users create, list, change, delete and clear todos in any
order; after every step each user sees exactly their own todos, and every other user's todo
answers 404 to them for GET, PATCH and DELETE (even with its current ETag).

Hypothesis state machines are synchronous: the machine runs in a worker thread and drives
the async test client on the test's event loop, so every request still runs inside the
test's rolled-back transaction. Each run of the machine works inside a savepoint of its own,
rolled back afterwards, so runs cannot see each other's rows even if the app had a bug that
leaked them (which keeps Hypothesis' replays deterministic), and gets fresh user ids (the
app's cache of known users outlives the rollback).
"""

import asyncio
import string
import uuid
from typing import Any, ClassVar

import asyncpg
import httpx
from asyncpg.transaction import Transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.support import TokenFactory
from tests.todos.support import BlockingClient, Headers

USERS = ("ann", "ben", "cy")
FIELDS = ("title", "completed", "priority", "version")

titles = st.text(alphabet=string.ascii_letters + string.digits + " éß", min_size=1, max_size=20)
titles = titles.filter(lambda title: title.strip() != "")
priorities = st.sampled_from(["low", "medium", "high"])
changes = st.fixed_dictionaries(
    {}, optional={"title": titles, "completed": st.booleans(), "priority": priorities}
)


class TodoIsolation(RuleBasedStateMachine):
    api: ClassVar[BlockingClient]
    tokens: ClassVar[TokenFactory]
    connection: ClassVar[asyncpg.Connection]

    def __init__(self) -> None:
        super().__init__()
        self.savepoint = self.api.run(self._begin_savepoint())
        run = uuid.uuid4().hex[:12]
        self.headers: dict[str, Headers] = {
            user: self.tokens.headers(f"{user}-{run}") for user in USERS
        }
        # What each user should see: todo id -> the fields this machine tracks.
        self.model: dict[str, dict[str, dict[str, Any]]] = {user: {} for user in USERS}
        self.page_size = 2
        self.steps = 0
        self.missing: Any = None

    def request(self, user: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers[user], **kwargs.pop("headers", {})}
        return self.api.request(method, url, headers=headers, **kwargs)

    def owners(self) -> list[str]:
        return [user for user in USERS if self.model[user]]

    # -- rules ------------------------------------------------------------------------------

    @rule(
        user=st.sampled_from(USERS),
        todos=st.lists(st.tuples(titles, st.booleans(), priorities), min_size=1, max_size=3),
    )
    def create(self, user: str, todos: list[tuple[str, bool, str]]) -> None:
        for title, completed, priority in todos:
            body = {"title": title, "completed": completed, "priority": priority}
            response = self.request(user, "POST", "/todos", json=body)
            assert response.status_code == 201, response.text
            todo = response.json()
            self.model[user][todo["id"]] = {**body, "title": title.strip(), "version": 1}

    @precondition(lambda self: self.owners())
    @rule(data=st.data(), changes=changes)
    def patch(self, data: st.DataObject, changes: dict[str, Any]) -> None:
        user = data.draw(st.sampled_from(self.owners()), label="user")
        todo_id = data.draw(st.sampled_from(sorted(self.model[user])), label="todo")
        response = self.request(user, "PATCH", f"/todos/{todo_id}", json=changes)
        assert response.status_code == 200, response.text
        expected = self.model[user][todo_id]
        if "title" in changes:
            changes = {**changes, "title": changes["title"].strip()}
        expected.update(changes)
        expected["version"] += 1 if changes else 0

    @precondition(lambda self: self.owners())
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        user = data.draw(st.sampled_from(self.owners()), label="user")
        todo_id = data.draw(st.sampled_from(sorted(self.model[user])), label="todo")
        response = self.request(user, "DELETE", f"/todos/{todo_id}")
        assert response.status_code == 204, response.text
        del self.model[user][todo_id]

    @rule(user=st.sampled_from(USERS))
    def clear_completed(self, user: str) -> None:
        response = self.request(user, "DELETE", "/todos", params={"completed": "true"})
        done = [todo_id for todo_id, todo in self.model[user].items() if todo["completed"]]
        assert response.json() == {"deleted": len(done)}
        for todo_id in done:
            del self.model[user][todo_id]

    @rule(page_size=st.integers(min_value=1, max_value=4))
    def list_in_pages_of(self, page_size: int) -> None:
        self.page_size = page_size  # the invariant below does the listing

    @precondition(lambda self: len(self.owners()) >= 1)
    @rule(data=st.data())
    def stranger_tries_a_todo(self, data: st.DataObject) -> None:
        owner = data.draw(st.sampled_from(self.owners()), label="owner")
        stranger = data.draw(st.sampled_from([u for u in USERS if u != owner]), label="stranger")
        todo_id = data.draw(st.sampled_from(sorted(self.model[owner])), label="todo")
        self.assert_hidden_from(stranger, owner, todo_id)

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def everyone_sees_exactly_their_own_todos(self) -> None:
        for user in USERS:
            listed = self.list_all(user)
            assert len(listed) == len({todo["id"] for todo in listed}), "listed twice"
            seen = {todo["id"]: {field: todo[field] for field in FIELDS} for todo in listed}
            assert seen == self.model[user]

    @invariant()
    def nobody_reaches_anyone_elses_todo(self) -> None:
        # One stranger and one of the others' todos per step, in turn: every pair comes up,
        # at a fraction of the requests.
        self.steps += 1
        stranger = USERS[self.steps % len(USERS)]
        foreign = [
            (owner, todo_id)
            for owner in USERS
            if owner != stranger
            for todo_id in sorted(self.model[owner])
        ]
        if foreign:
            owner, todo_id = foreign[self.steps % len(foreign)]
            self.assert_hidden_from(stranger, owner, todo_id)

    def teardown(self) -> None:
        self.api.run(self.savepoint.rollback())

    async def _begin_savepoint(self) -> Transaction:
        savepoint = self.connection.transaction()
        await savepoint.start()
        return savepoint

    # -- helpers ----------------------------------------------------------------------------

    def list_all(self, user: str) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": self.page_size}
        while True:
            response = self.request(user, "GET", "/todos", params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            assert len(body["items"]) <= self.page_size
            listed += body["items"]
            if body["next_cursor"] is None:
                return listed
            params["cursor"] = body["next_cursor"]

    def assert_hidden_from(self, stranger: str, owner: str, todo_id: str) -> None:
        url = f"/todos/{todo_id}"
        etag = {"If-Match": f'"{self.model[owner][todo_id]["version"]}"'}
        answers = [
            self.request(stranger, "GET", url),
            self.request(stranger, "PATCH", url, json={"title": "stolen"}, headers=etag),
            self.request(stranger, "DELETE", url, headers=etag),
        ]
        for answer in answers:
            assert answer.status_code == 404, (answer.request.method, answer.text)
            assert answer.json() == self.not_found(stranger)

    def not_found(self, user: str) -> Any:
        """What `user` gets for an id that exists nowhere."""
        if self.missing is None:
            self.missing = self.request(user, "GET", f"/todos/{uuid.uuid4()}").json()
        return self.missing


async def test_users_only_ever_see_and_touch_their_own_todos(
    client: httpx.AsyncClient, tokens: TokenFactory, connection: asyncpg.Connection
) -> None:
    class Machine(TodoIsolation):
        api = BlockingClient(client, asyncio.get_running_loop())

    Machine.tokens = tokens
    Machine.connection = connection
    machine_settings = settings(
        max_examples=20,
        stateful_step_count=15,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )

    await asyncio.to_thread(run_state_machine_as_test, Machine, settings=machine_settings)
