"""The benchmark database: create it, migrate it with the app's own migrations, fill it with
realistic users, todos and tags through COPY, and drop it again."""

import asyncio
import os
import random
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from uuid_utils.compat import uuid7

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_DB = "todo_bench"
REPO_ROOT = Path(__file__).resolve().parent.parent


def bench_url(admin_url: str, name: str = BENCH_DB) -> str:
    """The admin URL with its database swapped for the benchmark's (`name`)."""
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def recreate_database(admin_url: str, name: str = BENCH_DB) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        # FORCE: a previous run killed mid-way may have left sessions behind.
        await connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await connection.execute(f"CREATE DATABASE {name}")
    finally:
        await connection.close()


async def drop_database(admin_url: str, name: str = BENCH_DB) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await connection.close()


@contextmanager
def migrated_database(
    admin_url: str, name: str, workdir: Path, say: Callable[[str], object]
) -> Iterator[str]:
    """A fresh database `name` on the admin URL's server, migrated: its URL. Dropped when the
    block ends, however it ends; `say` reports both steps."""
    say(f"creating database {name}")
    asyncio.run(recreate_database(admin_url, name))
    try:
        database_url = bench_url(admin_url, name)
        migrate(database_url, workdir)
        yield database_url
    finally:
        say(f"dropping database {name}")
        asyncio.run(drop_database(admin_url, name))


def migrate(database_url: str, workdir: Path) -> None:
    """`todo-api migrate`, run in a scratch directory so a developer's `.env` can't leak in."""
    env = {**clean_environment(), "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    subprocess.run(
        [sys.executable, "-m", "backend.cli", "migrate"],
        env=env,
        cwd=workdir,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def clean_environment() -> dict[str, str]:
    """os.environ without the app's settings, so the shell's AUTH_SECRET or DATABASE_URL
    never mixes with the benchmark's configuration."""
    app_prefixes = ("AUTH_", "DB_", "DATABASE_URL", "ENVIRONMENT", "AUTO_MIGRATE", "LOG_")
    return {key: value for key, value in os.environ.items() if not key.startswith(app_prefixes)}


# Realistic, varied text: titles a person would type, and words that `q` will look for.
_TEMPLATES = [
    "Call {person} about the {topic}",
    "Email {person} re: {topic}",
    "Buy {item}",
    "Pick up {item} from the {place}",
    "Book {appointment}",
    "Renew {document}",
    "Pay the {bill} bill",
    "Review {work} for {person}",
    "Finish the {work}",
    "Schedule {appointment}",
    "Clean the {room}",
    "Fix the {thing}",
    "Return {item} to the {place}",
    "Plan {person}'s birthday",
    'Read "{reading}"',
    "Prepare slides for the {topic} meeting",
    "Submit {document}",
    "Cancel the {bill} subscription",
    "Send invoice to {person}",
    "Water the plants",
    "Back up the laptop",
]
_WORDS = {
    "person": ["Anna", "Ben", "mum", "Dr. Patel", "the landlord", "Sofia", "Kenji", "the plumber"],
    "topic": ["budget", "roadmap", "holiday", "insurance claim", "quarterly report", "lease"],
    "item": ["groceries", "printer ink", "a birthday card", "batteries", "dog food", "coffee"],
    "place": ["pharmacy", "post office", "library", "hardware store", "dry cleaner"],
    "appointment": ["dentist appointment", "car service", "haircut", "flights to Lisbon"],
    "document": ["passport", "driving licence", "gym membership", "parking permit"],
    "bill": ["electricity", "internet", "phone", "water", "streaming"],
    "work": ["pull request #482", "design doc", "tax return", "quarterly report", "CV"],
    "room": ["kitchen", "garage", "bathroom", "balcony"],
    "thing": ["bike brakes", "leaking tap", "garden gate", "wifi router"],
    "reading": ["Designing Data-Intensive Applications", "The Pragmatic Programmer", "Dune"],
}
_NOTES = [
    "Remember to bring the receipt.",
    "Ask whether the offer is still valid.",
    "Budget: about {n} euros.",
    "Blocked until {person} replies.",
    "See https://example.com/notes/{n} for details.",
    "Needs the {item} first.",
    "Second reminder: this was due last week!",
    "Check opening hours before going; closed on Sundays.",
]
# What `q` looks for: common words, a word found only in descriptions, and no match at all.
SEARCH_TERMS = ["report", "dentist", "groceries", "insurance", "bill", "receipt", "ANNA", "zebra"]


def _fill(template: str, rng: random.Random) -> str:
    values = {key: rng.choice(options) for key, options in _WORDS.items()}
    return template.format(n=rng.randint(5, 500), **values)


def _todo(rng: random.Random, user_id: str, now: datetime) -> tuple[object, ...]:
    created = now - timedelta(seconds=rng.randint(60, 180 * 86400))
    description = None
    if rng.random() < 0.7:  # most todos have notes, some of them long
        sentences = rng.randint(1, 12 if rng.random() < 0.1 else 3)
        description = " ".join(_fill(rng.choice(_NOTES), rng) for _ in range(sentences))
    completed = rng.random() < 0.3
    due = created + timedelta(days=rng.randint(-3, 60)) if rng.random() < 0.6 else None
    return (
        uuid7(nanoseconds=int(created.timestamp() * 1e9)),  # time-ordered, as the API makes them
        user_id,
        _fill(rng.choice(_TEMPLATES), rng),
        description,
        completed,
        created + timedelta(hours=rng.randint(1, 240)) if completed else None,
        rng.choices(["low", "medium", "high"], weights=[3, 5, 2])[0],
        due,
        created,
        created,
        1,
        0,  # change_seq: before any numbered change, as migration 0003 stamps existing todos
    )


# Tag names as people use them (some capitalised: the API sorts them ignoring case); more than
# the list holds get numbered project names.
_TAG_NAMES = [
    *("work", "home", "errands", "Urgent", "finance", "health", "family", "reading"),
    *("someday", "Waiting", "garden", "car", "travel", "kids", "admin", "shopping"),
]
_TAG_COLORS = [None, "#e11d48", "#2563eb", "#16a34a", "#f59e0b", "#7c3aed"]


def tag_names(count: int) -> list[str]:
    return [*_TAG_NAMES, *(f"project {n}" for n in range(1, count + 1))][:count]


def _tags(rng: random.Random, user_id: str, count: int, now: datetime) -> list[tuple[object, ...]]:
    """`count` tags of the user: rows of TAG_COLUMNS."""
    created = now - timedelta(days=200)
    return [
        (uuid7(), user_id, name, rng.choice(_TAG_COLORS), created, created)
        for name in tag_names(count)
    ]


def _links(
    rng: random.Random, todos: list[tuple[object, ...]], tags: list[tuple[object, ...]], most: int
) -> list[tuple[object, ...]]:
    """0 to `most` of the user's `tags` on each of their `todos`: rows of todo_tag."""
    return [
        (todo[1], todo[0], tag[0])
        for todo in todos
        for tag in rng.sample(tags, rng.randint(0, min(most, len(tags))))
    ]


@dataclass(frozen=True)
class BenchUser:
    id: str
    email: str
    name: str


@dataclass(frozen=True)
class Dataset:
    users: list[BenchUser]
    # (user index, todo id): the todos that GET /todos/{id} asks for.
    sample_todos: list[tuple[int, str]]


TODO_COLUMNS = [
    "id",
    "user_id",
    "title",
    "description",
    "completed",
    "completed_at",
    "priority",
    "due_at",
    "created_at",
    "updated_at",
    "version",
    "change_seq",
]
TAG_COLUMNS = ["id", "user_id", "name", "color", "created_at", "updated_at"]
LINK_COLUMNS = ["user_id", "todo_id", "tag_id"]


async def seed(
    database_url: str,
    users: int,
    todos_per_user: int,
    samples_per_user: int = 20,
    tags_per_user: int = 10,
    most_tags_per_todo: int = 3,
    first_user: int = 0,
) -> Dataset:
    """`users` users, each with `todos_per_user` todos and `tags_per_user` tags, and 0 to
    `most_tags_per_todo` of their tags on each todo (uniformly). Users are numbered from
    `first_user` (their e-mail addresses are unique)."""
    rng = random.Random(6)  # same text every run; ids and user ids are fresh
    now = datetime.now(UTC)
    people = [
        # Better Auth's ids are 32 random alphanumerics; these look alike.
        BenchUser(id=secrets.token_hex(16), email=f"user{i:05d}@bench.example", name=f"User {i}")
        for i in range(first_user, first_user + users)
    ]
    user_rows = [(u.id, u.name, u.email, False, None, now, now) for u in people]
    todo_rows = [_todo(rng, u.id, now) for u in people for _ in range(todos_per_user)]
    tag_rows: list[tuple[object, ...]] = []
    link_rows: list[tuple[object, ...]] = []
    for index, user in enumerate(people):
        tags = _tags(rng, user.id, tags_per_user, now)
        todos = todo_rows[index * todos_per_user : (index + 1) * todos_per_user]
        tag_rows += tags
        link_rows += _links(rng, todos, tags, most_tags_per_todo)
    samples = [
        (index, str(row[0]))
        for index in range(users)
        for row in rng.sample(
            todo_rows[index * todos_per_user : (index + 1) * todos_per_user],
            min(samples_per_user, todos_per_user),
        )
    ]
    connection = await asyncpg.connect(database_url)
    try:
        await connection.copy_records_to_table("user", records=user_rows)
        await connection.copy_records_to_table("todo", records=todo_rows, columns=TODO_COLUMNS)
        await connection.copy_records_to_table("tag", records=tag_rows, columns=TAG_COLUMNS)
        await connection.copy_records_to_table("todo_tag", records=link_rows, columns=LINK_COLUMNS)
        # The state autovacuum soon brings a production database to, rather than a fresh
        # bulk load's (and before a measurement, not in the middle of one): fresh statistics,
        # the visibility map set (index-only scans without heap fetches), and the trigram
        # index's pending list merged and its statistics updated. The last one changes the
        # plan of `q` (see benchmarks/README.md, "Reading the numbers").
        await connection.execute("VACUUM (ANALYZE)")
    finally:
        await connection.close()
    return Dataset(users=people, sample_todos=samples)


class Probe:
    """The harness's own connection to the bench database while the servers run: one
    connection for the whole run, so that the harness opens no sessions of its own that
    would count as the apps' (see `sessions`). Synchronous, on a private event loop."""

    def __init__(self, database_url: str) -> None:
        self._runner = asyncio.Runner(loop_factory=asyncio.new_event_loop)
        self._connection = self._runner.run(asyncpg.connect(database_url))

    def sessions(self) -> int:
        """Sessions ever opened on this database (pg_stat_database, PostgreSQL 14+): a fixed
        pool adds none while it serves; a pool that opens connections per burst does."""
        query = "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        return int(self._runner.run(self._connection.fetchval(query)))

    def patch_targets(
        self, user_index: dict[str, int], count: int, exclude: list[str]
    ) -> list[tuple[int, str, int]]:
        """Random todos with their current versions, for one PATCH-with-If-Match run."""
        rows = self._runner.run(
            self._connection.fetch(
                """SELECT user_id, id::text, version FROM todo
                WHERE id <> ALL($2::uuid[]) ORDER BY random() LIMIT $1""",
                count,
                exclude,
            )
        )
        return [(user_index[r["user_id"]], r["id"], r["version"]) for r in rows]

    def close(self) -> None:
        try:
            self._runner.run(self._connection.close(timeout=5))
        finally:
            self._runner.close()
