"""The README's commands run as written. Every ```sh block in README.md carries a marker on
the line before it:

- `<!-- readme: run -->`: needs nothing; run here with bash.
- `<!-- readme: run-with-api -->`: the examples against a running API. This test starts one
  with the README's own first command (`uv run todo-api serve`: development mode, embedded
  PostgreSQL, http://127.0.0.1:8000) in a fresh data directory, runs these blocks in order in
  one shell (so `$TOKEN` carries over), and checks every answer was a success.
- `<!-- readme: skip — why -->`: needs what a test cannot have (the suite itself, a server).

A new block without a marker fails the suite, so no example goes unchecked by accident.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
MARKED_BLOCK = re.compile(
    r"<!-- readme: (?P<mode>run-with-api|run|skip)(?: — (?P<why>[^>]+))? -->\n"
    r"```sh\n(?P<code>.*?)```",
    re.DOTALL,
)
BLOCKS = [(m["mode"], m["why"], m["code"]) for m in MARKED_BLOCK.finditer(README)]
API = "http://127.0.0.1:8000"


def clean_environment(data_dir: Path) -> dict[str, str]:
    """A shell like a developer's on a fresh clone: none of the suite's settings."""
    keep = ("PATH", "HOME", "LANG", "UV_PYTHON", "UV_PYTHON_DOWNLOADS", "UV_CACHE_DIR")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env["DATA_DIR"] = str(data_dir)  # instead of the checkout's .data/
    return env


def bash(code: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", code],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{code}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def json_documents(text: str) -> list[Any]:
    """The JSON bodies curl printed back to back."""
    decoder, documents, position = json.JSONDecoder(), [], 0
    while position < len(text):
        if text[position].isspace():
            position += 1
            continue
        document, position = decoder.raw_decode(text, position)
        documents.append(document)
    return documents


def test_every_shell_block_is_marked() -> None:
    assert len(BLOCKS) == README.count("```sh"), "a ```sh block in README.md has no marker"
    assert all(why for mode, why, _ in BLOCKS if mode == "skip"), "a skip must say why"


@pytest.mark.parametrize("code", [code for mode, _, code in BLOCKS if mode == "run"])
def test_blocks_that_need_nothing_run(code: str, tmp_path: Path) -> None:
    bash(code, clean_environment(tmp_path))


def port_8000_is_free() -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", 8000)) != 0


@pytest.mark.skipif(shutil.which("uv") is None, reason="the README's commands need uv on PATH")
@pytest.mark.skipif(not port_8000_is_free(), reason="port 8000, the README's, is in use")
def test_the_api_examples_run_against_a_fresh_api(tmp_path: Path) -> None:
    env = clean_environment(tmp_path)
    server = subprocess.Popen(
        ["uv", "run", "todo-api", "serve"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            try:
                if httpx.get(f"{API}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the API did not become ready in 60 s"
            time.sleep(0.2)

        examples = "\n".join(code for mode, _, code in BLOCKS if mode == "run-with-api")
        answers = json_documents(bash(examples, env))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    problems = [a for a in answers if "status" in a and "type" in a]
    assert not problems
    created = [a for a in answers if "title" in a]
    assert [todo["title"] for todo in created] == [
        "Buy milk", "Send the invoice", "Weekly review",
    ]  # fmt: skip
    assert created[1]["tags"] == ["Urgent", "work"]
    assert created[2]["recurrence"] == "FREQ=WEEKLY;BYDAY=MO"
    filtered, tags = answers[-2:]
    assert [todo["title"] for todo in filtered["items"]] == ["Send the invoice"]
    assert [tag["name"] for tag in tags["items"]] == ["Urgent", "work"]
