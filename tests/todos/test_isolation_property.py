"""Isolation as a property: three users create, list, change, delete and clear todos, and
create, attach, rename, delete and filter by tags, in any order; after every step each user
sees exactly their own todos and tags, and every other user's todo or tag answers 404 to them
for GET, PATCH and DELETE (even with its current ETag).

Tag names come from a small pool shared by all users, in several spellings, so users often
have tags of the same name: each user's listing, `todo_count`s, todo tag names and `tag=`
filter must still be exactly their own. Every successful response is also scanned for the ids
of other users' todos and tags.

Hypothesis state machines are synchronous: the machine runs in a worker thread and drives
the async test client on the test's event loop, so every request still runs inside the
test's rolled-back transaction. Each run of the machine works inside a savepoint of its own,
rolled back afterwards, so runs cannot see each other's rows even if the app had a bug that
leaked them (which keeps Hypothesis' replays deterministic), and gets fresh user ids (the
app's cache of known users outlives the rollback).
"""

import asyncio
import itertools
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
FIELDS = ("title", "completed", "priority", "version", "tags")
# Every base name starts with its own letter, so sorting "ignoring case" cannot depend on the
# database's collation; the spellings make names clash across users and case.
TAG_NAMES = ("work", "Work", " WORK ", "home", "Home", "urgent", "x y", "X Y")
STOLEN = "stolen"  # what a stranger tries to tag someone else's todo with; never succeeds

titles = st.text(alphabet=string.ascii_letters + string.digits + " éß", min_size=1, max_size=20)
titles = titles.filter(lambda title: title.strip() != "")
priorities = st.sampled_from(["low", "medium", "high"])
tag_names = st.sampled_from(TAG_NAMES)
tag_lists = st.lists(tag_names, max_size=3)
changes = st.fixed_dictionaries(
    {},
    optional={
        "title": titles,
        "completed": st.booleans(),
        "priority": priorities,
        "tags": tag_lists,
    },
)


def by_name(name: str) -> tuple[str, str]:
    """How the API orders tag names: ignoring case, ties (none here) broken exactly."""
    return (name.lower(), name)


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
        # What each user should see: todo id -> the fields this machine tracks, with "tags"
        # as a set of keys of self.tags[user].
        self.model: dict[str, dict[str, dict[str, Any]]] = {user: {} for user in USERS}
        # Each user's tags: a key of the machine's own -> {"id", "name"}. A tag created as a
        # side effect of a todo's `tags` has id None until a listing shows it.
        self.tags: dict[str, dict[int, dict[str, Any]]] = {user: {} for user in USERS}
        self.tag_keys = itertools.count()
        self.page_size = 2
        self.steps = 0
        self.missing: dict[str, Any] = {}

    def request(self, user: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers[user], **kwargs.pop("headers", {})}
        response = self.api.request(method, url, headers=headers, **kwargs)
        if response.is_success:
            self.assert_no_foreign_ids(user, response.text)
        return response

    def owners(self) -> list[str]:
        return [user for user in USERS if self.model[user]]

    def tag_owners(self) -> list[str]:
        return [user for user in USERS if self.known_tags(user)]

    def known_tags(self, user: str) -> list[int]:
        return sorted(key for key, tag in self.tags[user].items() if tag["id"] is not None)

    # -- the model ----------------------------------------------------------------------------

    def tag_named(self, user: str, name: str) -> int | None:
        wanted = name.strip().lower()
        return next(
            (k for k, tag in self.tags[user].items() if tag["name"].lower() == wanted), None
        )

    def resolve(self, user: str, names: list[str]) -> set[int]:
        """The user's tags a todo's `tags` names, creating the missing ones (first spelling)."""
        keys: set[int] = set()
        for name in names:
            key = self.tag_named(user, name)
            if key is None:
                key = next(self.tag_keys)
                self.tags[user][key] = {"id": None, "name": name.strip()}
            keys.add(key)
        return keys

    def shown_tags(self, user: str, keys: set[int]) -> list[str]:
        return sorted((self.tags[user][key]["name"] for key in keys), key=by_name)

    def expected_todos(self, user: str) -> dict[str, dict[str, Any]]:
        return {
            todo_id: {**todo, "tags": self.shown_tags(user, todo["tags"])}
            for todo_id, todo in self.model[user].items()
        }

    def todo_count(self, user: str, key: int) -> int:
        return sum(key in todo["tags"] for todo in self.model[user].values())

    def bump_todos_tagged(self, user: str, key: int) -> None:
        for todo in self.model[user].values():
            if key in todo["tags"]:
                todo["version"] += 1

    # -- rules: todos --------------------------------------------------------------------------

    @rule(
        user=st.sampled_from(USERS),
        todos=st.lists(
            st.tuples(titles, st.booleans(), priorities, tag_lists), min_size=1, max_size=3
        ),
    )
    def create(self, user: str, todos: list[tuple[str, bool, str, list[str]]]) -> None:
        for title, completed, priority, names in todos:
            body: dict[str, Any] = {"title": title, "completed": completed, "priority": priority}
            if names:
                body["tags"] = names
            response = self.request(user, "POST", "/todos", json=body)
            assert response.status_code == 201, response.text
            todo = response.json()
            self.model[user][todo["id"]] = {
                "title": title.strip(),
                "completed": completed,
                "priority": priority,
                "version": 1,
                "tags": self.resolve(user, names),
            }
            self.assert_todo(user, todo)

    @precondition(lambda self: self.owners())
    @rule(data=st.data(), changes=changes)
    def patch(self, data: st.DataObject, changes: dict[str, Any]) -> None:
        user = data.draw(st.sampled_from(self.owners()), label="user")
        todo_id = data.draw(st.sampled_from(sorted(self.model[user])), label="todo")
        response = self.request(user, "PATCH", f"/todos/{todo_id}", json=changes)
        assert response.status_code == 200, response.text
        expected = self.model[user][todo_id]
        for field, value in changes.items():
            if field == "title":
                expected["title"] = value.strip()
            elif field == "tags":
                expected["tags"] = self.resolve(user, value)
            else:
                expected[field] = value
        expected["version"] += 1 if changes else 0
        self.assert_todo(user, response.json())

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

    # -- rules: tags ---------------------------------------------------------------------------

    @rule(user=st.sampled_from(USERS), name=tag_names)
    def create_tag(self, user: str, name: str) -> None:
        response = self.request(user, "POST", "/tags", json={"name": name})
        if self.tag_named(user, name) is not None:
            assert response.status_code == 409, response.text
            return
        assert response.status_code == 201, response.text
        tag = response.json()
        self.tags[user][next(self.tag_keys)] = {"id": tag["id"], "name": name.strip()}
        assert (tag["name"], tag["todo_count"]) == (name.strip(), 0)

    @precondition(lambda self: self.tag_owners())
    @rule(data=st.data(), name=tag_names)
    def rename_tag(self, data: st.DataObject, name: str) -> None:
        user = data.draw(st.sampled_from(self.tag_owners()), label="user")
        key = data.draw(st.sampled_from(self.known_tags(user)), label="tag")
        tag = self.tags[user][key]
        response = self.request(user, "PATCH", f"/tags/{tag['id']}", json={"name": name})
        if self.tag_named(user, name) not in (None, key):
            assert response.status_code == 409, response.text
            return
        assert response.status_code == 200, response.text
        if name.strip() != tag["name"]:  # a rename to the very same name changes nothing
            self.bump_todos_tagged(user, key)
        tag["name"] = name.strip()
        self.assert_tag(user, key, response.json())

    @precondition(lambda self: self.tag_owners())
    @rule(data=st.data())
    def delete_tag(self, data: st.DataObject) -> None:
        user = data.draw(st.sampled_from(self.tag_owners()), label="user")
        key = data.draw(st.sampled_from(self.known_tags(user)), label="tag")
        response = self.request(user, "DELETE", f"/tags/{self.tags[user][key]['id']}")
        assert response.status_code == 204, response.text
        self.bump_todos_tagged(user, key)
        del self.tags[user][key]
        for todo in self.model[user].values():
            todo["tags"].discard(key)

    @rule(user=st.sampled_from(USERS), names=st.lists(tag_names, min_size=1, max_size=2))
    def filter_by_tags(self, user: str, names: list[str]) -> None:
        keys = {self.tag_named(user, name) for name in names}
        expected = set()
        if None not in keys:  # a name the user has no tag of (others may) matches nothing
            expected = {
                todo_id for todo_id, todo in self.model[user].items() if keys <= todo["tags"]
            }
        listed = self.list_all(user, tag=names)
        assert {todo["id"] for todo in listed} == expected
        assert len(listed) == len(expected), "listed twice"

    @precondition(lambda self: self.tag_owners())
    @rule(data=st.data())
    def stranger_tries_a_tag(self, data: st.DataObject) -> None:
        owner = data.draw(st.sampled_from(self.tag_owners()), label="owner")
        stranger = data.draw(st.sampled_from([u for u in USERS if u != owner]), label="stranger")
        key = data.draw(st.sampled_from(self.known_tags(owner)), label="tag")
        self.assert_tag_hidden_from(stranger, self.tags[owner][key]["id"])

    # -- invariants ----------------------------------------------------------------------------

    @invariant()
    def everyone_sees_exactly_their_own_todos(self) -> None:
        for user in USERS:
            listed = self.list_all(user)
            assert len(listed) == len({todo["id"] for todo in listed}), "listed twice"
            seen = {todo["id"]: {field: todo[field] for field in FIELDS} for todo in listed}
            self.assert_no_foreign_names(user, [name for t in listed for name in t["tags"]])
            assert seen == self.expected_todos(user)

    @invariant()
    def everyone_sees_exactly_their_own_tags(self) -> None:
        # One user's listing per step, in turn (a leak would persist until seen); the todos'
        # tag names are checked for everyone at every step, above.
        user = USERS[self.steps % len(USERS)]
        response = self.request(user, "GET", "/tags")
        assert response.status_code == 200, response.text
        listed = response.json()["items"]
        self.assert_no_foreign_names(user, [tag["name"] for tag in listed])
        self.learn_tag_ids(user, listed)
        expected = [
            {"id": tag["id"], "name": tag["name"], "todo_count": self.todo_count(user, key)}
            for key, tag in sorted(self.tags[user].items(), key=lambda kv: by_name(kv[1]["name"]))
        ]
        assert [{f: tag[f] for f in ("id", "name", "todo_count")} for tag in listed] == expected

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

    # -- helpers -------------------------------------------------------------------------------

    def list_all(self, user: str, **filters: Any) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": self.page_size, **filters}
        while True:
            response = self.request(user, "GET", "/todos", params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            assert len(body["items"]) <= self.page_size
            listed += body["items"]
            if body["next_cursor"] is None:
                return listed
            params["cursor"] = body["next_cursor"]

    def learn_tag_ids(self, user: str, listed: list[dict[str, Any]]) -> None:
        """Ids of tags created by a todo's `tags`, from the user's listing."""
        ids = {tag["name"].lower(): tag["id"] for tag in listed}
        for tag in self.tags[user].values():
            if tag["id"] is None and tag["name"].lower() in ids:
                tag["id"] = ids[tag["name"].lower()]

    def assert_todo(self, user: str, todo: dict[str, Any]) -> None:
        """A todo in a response to `user` is as the model has it."""
        self.assert_no_foreign_names(user, todo["tags"])
        assert {field: todo[field] for field in FIELDS} == self.expected_todos(user)[todo["id"]]

    def assert_tag(self, user: str, key: int, tag: dict[str, Any]) -> None:
        model = self.tags[user][key]
        expected = {
            "id": model["id"],
            "name": model["name"],
            "todo_count": self.todo_count(user, key),
        }
        assert {field: tag[field] for field in expected} == expected

    def assert_no_foreign_ids(self, user: str, text: str) -> None:
        """No id of another user's todo or tag anywhere in a response to `user`."""
        for other in USERS:
            if other == user:
                continue
            for todo_id in self.model[other]:
                assert todo_id not in text, f"{other}'s todo shown to {user}"
            for tag in self.tags[other].values():
                assert tag["id"] is None or tag["id"] not in text, f"{other}'s tag shown to {user}"

    def assert_no_foreign_names(self, user: str, names: list[str]) -> None:
        """No tag name in a response to `user` that only other users have."""
        own = {tag["name"] for tag in self.tags[user].values()}
        others = {
            tag["name"] for other in USERS if other != user for tag in self.tags[other].values()
        }
        leaked = (set(names) & others) - own
        assert not leaked, f"{user} was shown tag names only others have: {leaked}"

    def assert_hidden_from(self, stranger: str, owner: str, todo_id: str) -> None:
        url = f"/todos/{todo_id}"
        etag = {"If-Match": f'"{self.model[owner][todo_id]["version"]}"'}
        # A change of tags takes another path (a transaction that locks the todo) than one of
        # plain fields (a single statement): every other try takes each.
        change = {"title": "stolen"} if self.steps % 2 else {"title": "stolen", "tags": [STOLEN]}
        answers = [
            self.request(stranger, "GET", url),
            self.request(stranger, "PATCH", url, json=change, headers=etag),
            self.request(stranger, "DELETE", url, headers=etag),
        ]
        for answer in answers:
            assert answer.status_code == 404, (answer.request.method, answer.text)
            assert answer.json() == self.not_found(stranger, "/todos")

    def assert_tag_hidden_from(self, stranger: str, tag_id: str) -> None:
        url = f"/tags/{tag_id}"
        answers = [
            self.request(stranger, "GET", url),
            self.request(stranger, "PATCH", url, json={"name": STOLEN}),
            self.request(stranger, "DELETE", url),
        ]
        for answer in answers:
            assert answer.status_code == 404, (answer.request.method, answer.text)
            assert answer.json() == self.not_found(stranger, "/tags")

    def not_found(self, user: str, collection: str) -> Any:
        """What `user` gets for an id that exists nowhere in `collection`."""
        if collection not in self.missing:
            url = f"{collection}/{uuid.uuid4()}"
            self.missing[collection] = self.request(user, "GET", url).json()
        return self.missing[collection]


async def test_users_only_ever_see_and_touch_their_own_todos_and_tags(
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
