"""Tag renames and deletes racing the writes that link tags, set up deterministically on a real
pool: one transaction is held open at the exact point of the race while the other statement
waits for it.
"""

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from backend.db import Database
from backend.sync.records import Upsert
from backend.sync.service import SyncService
from backend.tags.errors import TagNameTaken
from backend.tags.records import NewTag, TagChanges
from backend.tags.repository import TagRepository
from backend.tags.service import TagService
from backend.todos.records import NewTodo, TodoChanges
from backend.todos.repository import TodoRepository
from backend.todos.service import TodoService

WAIT_SECONDS = 5.0


async def blocked(database: Database, waiters: int = 1) -> None:
    """Returns once `waiters` backends of this database wait for a lock."""
    async with database.connection() as connection:
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                waiting = await connection.fetchval(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                if waiting >= waiters:
                    return
                await asyncio.sleep(0.01)


async def test_a_rename_to_a_name_being_created_waits_instead_of_deadlocking(
    live: Database, live_user: Callable[[], Awaitable[str]]
) -> None:
    """A create with a new tag "fresh" has created the tag (under the user's tag lock) and
    not yet taken its change number when a rename of another tag to "fresh" comes in. The
    rename must wait for the tag lock before it takes the counter: the create then gets
    its number and commits, and the rename fails cleanly as a taken name (409) — instead
    of holding the counter while waiting for the create's uncommitted "fresh", which waits
    for the counter: a deadlock, which PostgreSQL breaks by failing one of them."""
    user_id = await live_user()
    tags = TagService(live, user_id)
    other = await tags.create(NewTag(name="other"))

    async with live.transaction() as connection:
        tag_ids = await TagRepository(connection, user_id).resolve(("fresh",))
        rename = asyncio.create_task(tags.update(other.id, TagChanges(name="fresh")))
        await blocked(live)
        created = await TodoRepository(connection, user_id).create(
            NewTodo(title="tagged", tags=("fresh",)), tag_ids
        )
    with pytest.raises(TagNameTaken):
        await rename

    assert created.tags == ("fresh",)
    names = sorted(tag.name for tag in await tags.all())
    assert names == ["fresh", "other"]


@pytest.mark.parametrize("how", ["rename", "delete"])
@pytest.mark.parametrize("linker", ["patch with tags", "create with tags"])
async def test_a_tag_change_waiting_for_a_link_still_brings_back_the_linked_todo(
    live: Database, live_user: Callable[[], Awaitable[str]], how: str, linker: str
) -> None:
    """A write links a todo to tag "old" and holds its change number; meanwhile the tag is
    renamed (or deleted) and waits. Once both commit, the linked todo must carry a newer
    version than the link gave it (its representation changed: its ETag must too), and a
    reader that read the feed as soon as the link committed and then caught up holds the
    todo as it is now."""
    user_id = await live_user()
    todos, tags = TodoService(live, user_id), TagService(live, user_id)
    tag = await tags.create(NewTag(name="old"))
    existing = (await todos.create(NewTodo(title="linked later"))).todo
    sync = SyncService(live, user_id)

    async with live.transaction() as connection:
        repository = TodoRepository(connection, user_id)
        if linker == "patch with tags":
            await repository.lock(existing.id)
            linked = await repository.update(
                existing.id, TodoChanges(tags=("old",)), tag_ids=[tag.id]
            )
        else:
            linked = await repository.create(NewTodo(title="new", tags=("old",)), [tag.id])
        assert linked is not None
        if how == "rename":
            change = asyncio.create_task(tags.update(tag.id, TagChanges(name="new")))
        else:
            change = asyncio.create_task(tags.delete(tag.id))
        await blocked(live)
    first = await sync.changes(None, 100)  # most likely before the tag change commits
    await change
    later = await sync.changes(first.next, 100)

    now = await todos.get(linked.id)
    assert now.tags == (("new",) if how == "rename" else ())
    seen = {c.todo.id: c.todo for c in [*first.changes, *later.changes] if isinstance(c, Upsert)}
    assert seen[linked.id] == now
    assert now.version > linked.version
