"""Recurring todos through the API: completing one spawns its successor, in the same
transaction, exactly once, however the completion is repeated, retried or raced.

The rule arithmetic itself is tested without a database in test_recurrence.py; here each
case checks what a client sees: the successor's fields, the next_id/previous_id chain, the
422s, If-Match, and the races (on committed requests).
"""

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support import TokenFactory
from tests.todos.support import ConcurrencyProbe, Headers, Todo, create_todo, list_all

RACERS = 10
SERIES_FIELDS = ("title", "description", "priority", "tags", "time_zone")


async def patch(
    client: httpx.AsyncClient, headers: Headers, todo_id: str, changes: dict[str, Any], **extra: str
) -> httpx.Response:
    return await client.patch(f"/todos/{todo_id}", json=changes, headers={**headers, **extra})


async def complete(
    client: httpx.AsyncClient, headers: Headers, todo_id: str, **changes: Any
) -> Todo:
    response = await patch(client, headers, todo_id, {"completed": True, **changes})
    assert response.status_code == 200, response.text
    todo: Todo = response.json()
    assert todo["completed"] is True
    return todo


async def get(client: httpx.AsyncClient, headers: Headers, todo_id: str) -> Todo:
    response = await client.get(f"/todos/{todo_id}", headers=headers)
    assert response.status_code == 200, response.text
    todo: Todo = response.json()
    return todo


async def successor_of(client: httpx.AsyncClient, headers: Headers, completed: Todo) -> Todo:
    assert completed["next_id"] is not None, "no successor was spawned"
    successor = await get(client, headers, completed["next_id"])
    assert successor["previous_id"] == completed["id"]
    return successor


def problem_text(response: httpx.Response) -> str:
    """The problem's detail and every field error's location and message, for "names the
    problem"."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    errors = [
        f"{'.'.join(map(str, error['loc']))}: {error['msg']}"
        for error in problem.get("errors") or []
    ]
    return " ".join([problem["detail"], *errors])


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def local(text: str, zone: str) -> datetime:
    return instant(text).astimezone(ZoneInfo(zone))


# -- the successor ----------------------------------------------------------------------------


async def test_completion_spawns_a_successor_with_the_series_fields(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(
        client,
        alice,
        title="Water the plants",
        description="All of them",
        priority="high",
        tags=["home", "Errands"],
        recurrence="FREQ=DAILY;COUNT=5",
        time_zone="Europe/Berlin",
        due_at="2030-01-10T08:00:00Z",
        remind_at="2030-01-10T07:15:00Z",
    )

    completed = await complete(client, alice, todo["id"])
    successor = await successor_of(client, alice, completed)

    assert {field: successor[field] for field in SERIES_FIELDS} == {
        "title": "Water the plants",
        "description": "All of them",
        "priority": "high",
        "tags": ["Errands", "home"],
        "time_zone": "Europe/Berlin",
    }
    assert successor["recurrence"] == "FREQ=DAILY;COUNT=4"
    assert successor["due_at"] == "2030-01-11T08:00:00Z"
    assert successor["remind_at"] == "2030-01-11T07:15:00Z"  # 45 minutes before, as before
    assert successor["completed"] is False
    assert successor["completed_at"] is None
    assert successor["next_id"] is None
    assert successor["version"] == 1
    # The completed todo itself keeps its own fields and points at the successor.
    assert completed["due_at"] == "2030-01-10T08:00:00Z"
    assert completed["recurrence"] == "FREQ=DAILY;COUNT=5"
    assert await get(client, alice, todo["id"]) == completed
    assert {t["id"] for t in await list_all(client, alice)} == {todo["id"], successor["id"]}
    tags = (await client.get("/tags", headers=alice)).json()["items"]
    assert {tag["name"]: tag["todo_count"] for tag in tags} == {"Errands": 2, "home": 2}


async def test_the_successor_takes_what_the_completing_change_leaves(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(
        client,
        alice,
        title="Old",
        tags=["old"],
        recurrence="FREQ=WEEKLY",
        due_at="2030-01-07T09:00:00Z",
        remind_at="2030-01-07T08:00:00Z",
    )

    completed = await complete(
        client,
        alice,
        todo["id"],
        title="New",
        tags=["new"],
        due_at="2030-01-08T09:00:00Z",
        remind_at="2030-01-06T09:00:00Z",
    )
    successor = await successor_of(client, alice, completed)

    assert successor["title"] == "New"
    assert successor["tags"] == ["new"]
    assert successor["due_at"] == "2030-01-15T09:00:00Z"
    assert successor["remind_at"] == "2030-01-13T09:00:00Z"  # two days before, as given


async def test_a_successor_without_a_reminder_gets_none(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, recurrence="FREQ=DAILY", due_at="2030-01-10T08:00:00Z")

    successor = await successor_of(client, alice, await complete(client, alice, todo["id"]))

    assert successor["remind_at"] is None
    assert successor["tags"] == []
    assert successor["recurrence"] == "FREQ=DAILY"
    assert successor["time_zone"] == "UTC"


@pytest.mark.parametrize(
    ("recurrence", "time_zone", "due_at", "next_due"),
    [
        pytest.param(
            "FREQ=WEEKLY;BYDAY=MO",
            "Europe/Berlin",
            "2025-03-24T08:00:00Z",  # Monday 09:00 CET
            "2025-03-31T07:00:00Z",  # Monday 09:00 CEST
            id="berlin-monday-9-spring",
        ),
        pytest.param(
            "FREQ=WEEKLY;BYDAY=MO",
            "Europe/Berlin",
            "2025-10-20T07:00:00Z",  # Monday 09:00 CEST
            "2025-10-27T08:00:00Z",  # Monday 09:00 CET
            id="berlin-monday-9-autumn",
        ),
        pytest.param(
            "FREQ=DAILY;INTERVAL=3",
            "America/New_York",
            "2025-03-08T14:00:00Z",  # 09:00 EST
            "2025-03-11T13:00:00Z",  # 09:00 EDT
            id="new-york-every-3-days",
        ),
        pytest.param(
            "FREQ=WEEKLY;BYDAY=MO",
            "UTC",
            "2025-03-24T08:00:00Z",
            "2025-03-31T08:00:00Z",
            id="utc-keeps-the-utc-hour",
        ),
        pytest.param(
            "FREQ=WEEKLY;BYDAY=MO,WE,FR",
            "UTC",
            "2030-01-11T09:00:00Z",  # a Friday
            "2030-01-14T09:00:00Z",  # the Monday after
            id="weekly-several-days",
        ),
        pytest.param(
            "FREQ=MONTHLY;BYMONTHDAY=31",
            "UTC",
            "2025-01-31T12:00:00Z",
            "2025-03-31T12:00:00Z",  # not in February
            id="monthly-31-skips-february",
        ),
        pytest.param(
            "FREQ=MONTHLY;BYMONTHDAY=31",
            "UTC",
            "2025-03-31T12:00:00Z",
            "2025-05-31T12:00:00Z",  # not in April
            id="monthly-31-skips-april",
        ),
        pytest.param(
            "FREQ=MONTHLY;BYMONTHDAY=31",
            "Europe/Berlin",
            "2025-01-31T08:00:00Z",  # 09:00 CET
            "2025-03-31T07:00:00Z",  # 09:00 CEST, the day after the change
            id="monthly-31-in-berlin",
        ),
        pytest.param(
            "FREQ=YEARLY",
            "UTC",
            "2024-02-29T10:00:00Z",
            "2028-02-29T10:00:00Z",
            id="yearly-29-february",
        ),
        pytest.param(
            "FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=29",
            "UTC",
            "2024-02-29T10:00:00Z",
            "2028-02-29T10:00:00Z",
            id="every-12-months-on-the-29th-from-29-february",
        ),
        pytest.param(
            "FREQ=MONTHLY",
            "UTC",
            "2030-01-15T10:00:00.123456Z",
            "2030-02-15T10:00:00Z",  # occurrences have whole seconds
            id="monthly-drops-microseconds",
        ),
    ],
)
async def test_the_successor_is_due_at_the_next_occurrence(
    client: httpx.AsyncClient,
    alice: Headers,
    recurrence: str,
    time_zone: str,
    due_at: str,
    next_due: str,
) -> None:
    todo = await create_todo(
        client, alice, recurrence=recurrence, time_zone=time_zone, due_at=due_at
    )

    successor = await successor_of(client, alice, await complete(client, alice, todo["id"]))

    assert successor["due_at"] == next_due
    assert successor["recurrence"] == recurrence


async def test_monday_nine_in_berlin_stays_nine_local_across_the_spring_change(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    zone = "Europe/Berlin"
    todo = await create_todo(
        client,
        alice,
        recurrence="FREQ=WEEKLY;BYDAY=MO",
        time_zone=zone,
        due_at="2025-03-17T08:00:00Z",  # Monday 09:00 CET
        remind_at="2025-03-17T07:30:00Z",
    )

    series = [todo]
    for _ in range(3):
        completed = await complete(client, alice, series[-1]["id"])
        series.append(await successor_of(client, alice, completed))

    due = [local(t["due_at"], zone) for t in series]
    assert [(d.date().isoformat(), d.hour, d.minute) for d in due] == [
        ("2025-03-17", 9, 0),
        ("2025-03-24", 9, 0),
        ("2025-03-31", 9, 0),
        ("2025-04-07", 9, 0),
    ]
    assert [t["due_at"] for t in series] == [
        "2025-03-17T08:00:00Z",
        "2025-03-24T08:00:00Z",
        "2025-03-31T07:00:00Z",
        "2025-04-07T07:00:00Z",
    ]
    # The reminder keeps its offset in time, so it stays 08:30 local too.
    assert all(
        instant(t["due_at"]) - instant(t["remind_at"])
        == instant("2025-03-17T08:00:00Z") - instant("2025-03-17T07:30:00Z")
        for t in series
    )


async def test_monthly_on_the_31st_walks_only_through_long_months(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(
        client,
        alice,
        recurrence="FREQ=MONTHLY;BYMONTHDAY=31",
        time_zone="America/New_York",
        due_at="2025-01-31T14:00:00Z",  # 09:00 EST
    )

    series = [todo]
    for _ in range(4):
        completed = await complete(client, alice, series[-1]["id"])
        series.append(await successor_of(client, alice, completed))

    due = [local(t["due_at"], "America/New_York") for t in series]
    assert [(d.month, d.day, d.hour) for d in due] == [
        (1, 31, 9),
        (3, 31, 9),
        (5, 31, 9),
        (7, 31, 9),
        (8, 31, 9),
    ]


# -- the chain and the end of a series ----------------------------------------------------------


async def test_a_count_3_series_makes_exactly_three_todos_chained_both_ways(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    first = await create_todo(
        client, alice, recurrence="FREQ=DAILY;COUNT=3", due_at="2030-01-01T09:00:00Z"
    )

    series = [first]
    while True:
        completed = await complete(client, alice, series[-1]["id"])
        series[-1] = completed
        if completed["next_id"] is None:
            break
        series.append(await successor_of(client, alice, completed))
        assert len(series) <= 3, "the series did not end after COUNT todos"

    assert len(series) == 3
    assert [t["recurrence"] for t in series] == [
        "FREQ=DAILY;COUNT=3",
        "FREQ=DAILY;COUNT=2",
        "FREQ=DAILY;COUNT=1",
    ]
    assert [t["due_at"] for t in series] == [
        "2030-01-01T09:00:00Z",
        "2030-01-02T09:00:00Z",
        "2030-01-03T09:00:00Z",
    ]
    assert [t["previous_id"] for t in series] == [None, series[0]["id"], series[1]["id"]]
    assert [t["next_id"] for t in series] == [series[1]["id"], series[2]["id"], None]
    listed = await list_all(client, alice)
    assert sorted(t["id"] for t in listed) == sorted(t["id"] for t in series)
    assert all(t["completed"] for t in listed)


async def test_until_is_inclusive_and_ends_the_series(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(
        client,
        alice,
        recurrence="FREQ=DAILY;UNTIL=20300102T090000Z",
        due_at="2030-01-01T09:00:00Z",
    )

    successor = await successor_of(client, alice, await complete(client, alice, todo["id"]))
    last = await complete(client, alice, successor["id"])

    assert successor["due_at"] == "2030-01-02T09:00:00Z"
    assert successor["recurrence"] == "FREQ=DAILY;UNTIL=20300102T090000Z"
    assert last["next_id"] is None
    assert len(await list_all(client, alice)) == 2


async def test_a_series_already_past_until_spawns_nothing(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(
        client,
        alice,
        recurrence="FREQ=WEEKLY;UNTIL=20300105T000000Z",
        due_at="2030-01-01T09:00:00Z",
    )

    completed = await complete(client, alice, todo["id"])

    assert completed["next_id"] is None
    assert len(await list_all(client, alice)) == 1


# -- at most one successor ---------------------------------------------------------------------


async def test_uncompleting_and_completing_again_spawns_no_second_successor(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, recurrence="FREQ=DAILY", due_at="2030-01-01T09:00:00Z")
    first = await complete(client, alice, todo["id"])

    reopened = await patch(client, alice, todo["id"], {"completed": False})
    again = await complete(client, alice, todo["id"])

    assert reopened.status_code == 200
    assert reopened.json()["completed"] is False
    assert reopened.json()["next_id"] == first["next_id"]  # kept while open, too
    assert again["next_id"] == first["next_id"]
    assert again["version"] == first["version"] + 2
    assert len(await list_all(client, alice)) == 2


async def test_completing_a_completed_recurring_todo_again_does_nothing_more(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, recurrence="FREQ=DAILY", due_at="2030-01-01T09:00:00Z")
    first = await complete(client, alice, todo["id"])

    retried = await complete(client, alice, todo["id"])

    assert retried["next_id"] == first["next_id"]
    assert retried["completed_at"] == first["completed_at"]
    assert len(await list_all(client, alice)) == 2


async def test_a_deleted_successor_is_not_spawned_again(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, recurrence="FREQ=DAILY", due_at="2030-01-01T09:00:00Z")
    first = await complete(client, alice, todo["id"])
    deleted = await client.delete(f"/todos/{first['next_id']}", headers=alice)
    assert deleted.status_code == 204

    await patch(client, alice, todo["id"], {"completed": False})
    again = await complete(client, alice, todo["id"])

    assert again["next_id"] == first["next_id"]  # recorded for ever
    assert len(await list_all(client, alice)) == 1


async def test_completing_a_todo_that_does_not_recur_spawns_nothing(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, due_at="2030-01-01T09:00:00Z")

    completed = await complete(client, alice, todo["id"])

    assert completed["next_id"] is None
    assert completed["recurrence"] is None
    assert len(await list_all(client, alice)) == 1


async def test_a_completed_todo_made_recurring_spawns_nothing(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, due_at="2030-01-01T09:00:00Z")
    await complete(client, alice, todo["id"])

    changed = await patch(client, alice, todo["id"], {"recurrence": "FREQ=DAILY"})
    again = await complete(client, alice, todo["id"], recurrence="FREQ=WEEKLY")

    assert changed.status_code == 200
    assert again["next_id"] is None  # it was completed before it recurred
    assert len(await list_all(client, alice)) == 1


# -- the rule changed by the completing PATCH ----------------------------------------------------


async def test_completion_with_a_new_rule_spawns_by_the_new_rule(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, due_at="2030-01-01T09:00:00Z")

    completed = await complete(client, alice, todo["id"], recurrence="FREQ=WEEKLY;COUNT=2")
    successor = await successor_of(client, alice, completed)

    assert completed["recurrence"] == "FREQ=WEEKLY;COUNT=2"
    assert successor["recurrence"] == "FREQ=WEEKLY;COUNT=1"
    assert successor["due_at"] == "2030-01-08T09:00:00Z"


async def test_completion_replacing_the_rule_of_a_recurring_todo(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, recurrence="FREQ=DAILY", due_at="2030-01-31T09:00:00Z")

    completed = await complete(client, alice, todo["id"], recurrence="freq=monthly")
    successor = await successor_of(client, alice, completed)

    assert successor["recurrence"] == "FREQ=MONTHLY"
    assert successor["due_at"] == "2030-03-31T09:00:00Z"  # no 31 February


async def test_completion_that_ends_the_recurrence_spawns_nothing(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, recurrence="FREQ=DAILY", due_at="2030-01-01T09:00:00Z")

    completed = await complete(client, alice, todo["id"], recurrence=None)

    assert completed["recurrence"] is None
    assert completed["next_id"] is None
    assert len(await list_all(client, alice)) == 1


async def test_completion_with_a_new_time_zone_recurs_in_it(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(
        client, alice, recurrence="FREQ=WEEKLY", due_at="2025-03-24T08:00:00Z"
    )  # UTC

    completed = await complete(client, alice, todo["id"], time_zone="Europe/Berlin")
    successor = await successor_of(client, alice, completed)

    assert successor["time_zone"] == "Europe/Berlin"
    assert successor["due_at"] == "2025-03-31T07:00:00Z"  # still 09:00 in Berlin


# -- validation ---------------------------------------------------------------------------------

DUE = "2030-01-01T09:00:00Z"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"recurrence": "FREQ=DAILY;BYHOUR=9", "due_at": DUE}, "BYHOUR"),
        ({"recurrence": "FREQ=HOURLY", "due_at": DUE}, "HOURLY"),
        ({"recurrence": "FREQ=DAILY;BYDAY=MO", "due_at": DUE}, "BYDAY"),
        ({"recurrence": "FREQ=MONTHLY;BYDAY=1MO", "due_at": DUE}, "BYDAY"),
        ({"recurrence": "FREQ=DAILY;COUNT=2;UNTIL=20300105T000000Z", "due_at": DUE}, "UNTIL"),
        ({"recurrence": "FREQ=DAILY;UNTIL=20300105T000000", "due_at": DUE}, "UNTIL"),
        ({"recurrence": "FREQ=DAILY;INTERVAL=0", "due_at": DUE}, "INTERVAL"),
        ({"recurrence": "FREQ=DAILY;INTERVAL=1001", "due_at": DUE}, "INTERVAL"),
        ({"recurrence": "FREQ=DAILY;COUNT=0", "due_at": DUE}, "COUNT"),
        ({"recurrence": "RRULE:FREQ=DAILY", "due_at": DUE}, "RRULE:"),
        ({"recurrence": "", "due_at": DUE}, "empty"),
        ({"recurrence": "FREQ=DAILY"}, "due_at"),
        ({"recurrence": "FREQ=DAILY", "due_at": DUE, "time_zone": "Mars/Olympus"}, "time zone"),
        ({"due_at": DUE, "time_zone": "localtime"}, "time zone"),
        ({"recurrence": "FREQ=DAILY", "due_at": DUE, "completed": True}, "completed"),
        ({"due_at": DUE, "remind_at": "2030-01-01T09:00:01Z"}, "remind_at"),
    ],
)
async def test_invalid_recurring_todos_are_422_naming_the_problem(
    client: httpx.AsyncClient, alice: Headers, body: dict[str, Any], named: str
) -> None:
    response = await client.post("/todos", json={"title": "x", **body}, headers=alice)

    assert named in problem_text(response)
    assert await list_all(client, alice) == []


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"due_at": None}, "due_at"),
        ({"due_at": None, "completed": True}, "due_at"),
        ({"recurrence": "FREQ=HOURLY"}, "HOURLY"),
        ({"recurrence": "FREQ=WEEKLY;BYMONTHDAY=3"}, "BYMONTHDAY"),
        ({"recurrence": "FREQ=DAILY", "completed": True, "time_zone": "Nowhere/Else"}, "time zone"),
        ({"time_zone": None}, "time_zone"),
        ({"due_at": "2030-01-01T07:00:00Z"}, "remind_at"),  # now before the reminder
        ({"remind_at": "2030-01-01T09:30:00Z", "completed": True}, "remind_at"),
    ],
)
async def test_invalid_changes_to_a_recurring_todo_are_422_and_change_nothing(
    client: httpx.AsyncClient, alice: Headers, changes: dict[str, Any], named: str
) -> None:
    todo = await create_todo(
        client,
        alice,
        recurrence="FREQ=DAILY",
        due_at="2030-01-01T09:00:00Z",
        remind_at="2030-01-01T08:00:00Z",
    )

    response = await patch(client, alice, todo["id"], changes)

    assert named in problem_text(response)
    assert await list_all(client, alice) == [todo]


async def test_a_rule_on_a_todo_without_due_at_is_422(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice)

    for changes in ({"recurrence": "FREQ=DAILY"}, {"recurrence": "FREQ=DAILY", "completed": True}):
        response = await patch(client, alice, todo["id"], changes)
        assert "due_at" in problem_text(response)

    assert await list_all(client, alice) == [todo]


# -- If-Match and other users -------------------------------------------------------------------


async def test_a_stale_if_match_completes_nothing_and_spawns_nothing(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, recurrence="FREQ=DAILY", due_at="2030-01-01T09:00:00Z")
    renamed = await patch(client, alice, todo["id"], {"title": "renamed"})
    assert renamed.headers["etag"] == '"2"'

    stale = await patch(client, alice, todo["id"], {"completed": True}, **{"If-Match": '"1"'})

    assert stale.status_code == 412, stale.text
    assert await list_all(client, alice) == [renamed.json()]


async def test_the_current_if_match_completes_and_spawns(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    todo = await create_todo(client, alice, recurrence="FREQ=DAILY", due_at="2030-01-01T09:00:00Z")

    response = await patch(client, alice, todo["id"], {"completed": True}, **{"If-Match": '"1"'})

    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"2"'
    successor = await successor_of(client, alice, response.json())
    assert successor["due_at"] == "2030-01-02T09:00:00Z"
    # And the same ETag once more: stale now, and still one successor.
    again = await patch(client, alice, todo["id"], {"completed": True}, **{"If-Match": '"1"'})
    assert again.status_code == 412
    assert len(await list_all(client, alice)) == 2


async def test_another_users_recurring_todo_is_404_and_untouched(
    client: httpx.AsyncClient, alice: Headers, bob: Headers
) -> None:
    todo = await create_todo(client, alice, recurrence="FREQ=DAILY", due_at="2030-01-01T09:00:00Z")

    answers = [
        await patch(client, bob, todo["id"], {"completed": True}),
        await patch(client, bob, todo["id"], {"completed": True}, **{"If-Match": '"1"'}),
        await patch(client, bob, todo["id"], {"completed": True, "recurrence": "FREQ=WEEKLY"}),
        await patch(client, bob, todo["id"], {"completed": True, "tags": ["mine"]}),
        await client.get(f"/todos/{todo['id']}", headers=bob),
    ]

    assert [answer.status_code for answer in answers] == [404] * len(answers)
    assert await list_all(client, alice) == [todo]
    assert await list_all(client, bob) == []
    assert (await client.get("/tags", headers=bob)).json()["items"] == []


async def test_reads_show_the_series_fields(client: httpx.AsyncClient, alice: Headers) -> None:
    todo = await create_todo(
        client,
        alice,
        recurrence="FREQ=WEEKLY;BYDAY=FR,MO",
        time_zone="Asia/Kolkata",
        due_at="2030-01-07T03:30:00Z",
        remind_at="2030-01-07T03:00:00Z",
        tags=["b", "A"],
    )
    fields = {
        "recurrence": "FREQ=WEEKLY;BYDAY=FR,MO",
        "time_zone": "Asia/Kolkata",
        "remind_at": "2030-01-07T03:00:00Z",
        "tags": ["A", "b"],
        "next_id": None,
        "previous_id": None,
    }

    listed = (await client.get("/todos", headers=alice)).json()["items"]
    fetched = await get(client, alice, todo["id"])

    for shown in (todo, listed[0], fetched):
        assert {name: shown[name] for name in fields} == fields


# -- races (committed requests) -----------------------------------------------------------------


async def race_completions(
    client: httpx.AsyncClient, headers: Headers, todo_id: str, **extra: str
) -> list[httpx.Response]:
    return list(
        await asyncio.gather(
            *(patch(client, headers, todo_id, {"completed": True}, **extra) for _ in range(RACERS))
        )
    )


async def test_concurrent_completions_spawn_exactly_one_successor(
    committed_client: httpx.AsyncClient,
    committed_user: Callable[[], str],
    tokens: TokenFactory,
    probe: ConcurrencyProbe,
) -> None:
    headers = tokens.headers(committed_user())
    todo = await create_todo(
        committed_client,
        headers,
        recurrence="FREQ=DAILY",
        due_at="2030-01-01T09:00:00Z",
        tags=["raced"],
    )

    responses = await race_completions(committed_client, headers, todo["id"])

    assert probe.max_in_flight > 1, "the requests did not overlap"
    assert Counter(response.status_code for response in responses) == {200: RACERS}
    assert {response.json()["next_id"] for response in responses} != {None}
    listed = await list_all(committed_client, headers)
    assert len(listed) == 2
    successor = next(t for t in listed if t["id"] != todo["id"])
    assert successor["previous_id"] == todo["id"]
    assert successor["tags"] == ["raced"]
    # Every answer names the one successor: it was there before any of them was answered.
    assert {response.json()["next_id"] for response in responses} == {successor["id"]}
    stored = await get(committed_client, headers, todo["id"])
    assert stored["version"] == 1 + RACERS  # each completion was written, one after another


async def test_concurrent_completions_with_one_etag_let_one_win_and_spawn_once(
    committed_client: httpx.AsyncClient,
    committed_user: Callable[[], str],
    tokens: TokenFactory,
    probe: ConcurrencyProbe,
) -> None:
    headers = tokens.headers(committed_user())
    todo = await create_todo(
        committed_client, headers, recurrence="FREQ=DAILY", due_at="2030-01-01T09:00:00Z"
    )

    responses = await race_completions(committed_client, headers, todo["id"], **{"If-Match": '"1"'})

    assert probe.max_in_flight > 1, "the requests did not overlap"
    assert Counter(response.status_code for response in responses) == {200: 1, 412: RACERS - 1}
    winner = next(response.json() for response in responses if response.status_code == 200)
    listed = await list_all(committed_client, headers)
    assert sorted(t["id"] for t in listed) == sorted([todo["id"], winner["next_id"]])
    assert await get(committed_client, headers, todo["id"]) == winner
