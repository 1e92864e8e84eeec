"""Where does a request's time go? Samples the API and the baseline with py-spy while one
scenario's load runs, and adds the samples up by layer, in µs of CPU per request.

    uv run --with py-spy python -m benchmarks.profile [--scenario list] [--seconds 10]

Each sample is charged to the innermost frame that belongs to a known library (PyJWT,
asyncpg, SQLAlchemy, pydantic, ...), so `json.loads` inside PyJWT counts as JWT and
`json.dumps` inside FastAPI counts as FastAPI. The collapsed stacks are kept in
benchmarks/results/ for flame graphs (speedscope.app opens them).
"""

import argparse
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime

from benchmarks.load import SCENARIOS, pinned
from benchmarks.run import RESULTS_DIR, parse_args, prepared, step

RATE = 500  # samples per second
# The innermost matching frame decides; the standard library only when nothing else matched.
LAYERS = [
    ("JWT verification (PyJWT, cryptography)", ("/jwt/", "/cryptography/")),
    ("asyncpg (Cython protocol + its socket writes)", ("/asyncpg/",)),
    ("SQLAlchemy + SQLModel (session, compile, rows)", ("/sqlalchemy/", "/sqlmodel/")),
    ("pydantic (validation, serialisation)", ("/pydantic/", "/pydantic_core/")),
    ("FastAPI (routing, dependencies, encoding)", ("/fastapi/",)),
    ("Starlette", ("/starlette/",)),
    ("uvicorn + httptools", ("/uvicorn/", "/httptools/")),
    ("logging + metrics", ("/structlog/", "/logging/", "/prometheus_client/")),
    ("the app's own code", ("/backend/", "/benchmarks/")),
]
FALLBACK = "event loop + other standard library"
# Busy, but no Python frame on the stack: uvloop's C loop, socket reads and writes in the kernel.
NATIVE = "no Python frame (uvloop, socket I/O, GC)"
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*):\d+\)$")


def layer_of(files: list[str]) -> str:
    if not files:
        return NATIVE
    for file in reversed(files):  # innermost first
        for layer, markers in LAYERS:
            if any(marker in file for marker in markers):
                return layer
    return FALLBACK


def summarise(collapsed: str) -> tuple[Counter[str], Counter[str], int]:
    """Samples per layer, samples per app function (inclusive), total samples."""
    layers: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [m for frame in stack.split(";") if (m := _FRAME.match(frame))]
        files = [m["file"] for m in frames]
        layers[layer_of(files)] += count
        mine = {
            f"{m['function']} ({file.rpartition('/')[2]})"
            for m, file in zip(frames, files, strict=True)
            if "/backend/" in file or "/benchmarks/" in file
        }
        for function in mine:
            functions[function] += count
        total += count
    return layers, functions, total


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("--scenario", choices=SCENARIOS, default="list")
    parser.add_argument("--seconds", type=int, default=10)
    options, rest = parser.parse_known_args()
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("py-spy not found: run with `uv run --with py-spy python -m ...`")
    args = parse_args(["--rounds", "1", *rest])
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    RESULTS_DIR.mkdir(exist_ok=True)
    reports = []
    with prepared(args) as bench:
        for server in bench.servers:
            bench.run(server, options.scenario, 2, args.connections)  # warm this scenario
            output = RESULTS_DIR / f"profile-{server.name}-{options.scenario}-{stamp}.txt"
            command = [py_spy, "record", "--pid", str(server.pid), "--rate", str(RATE)]
            command += ["--duration", str(options.seconds), "--nonblocking", "--full-filenames"]
            command += ["--format", "raw"]
            command += ["--output", str(output)]
            # py-spy runs beside the load generator, off the server's core.
            sampler = subprocess.Popen(pinned(command, bench.load_cpu), stdout=subprocess.DEVNULL)
            time.sleep(0.5)  # attached before the load starts
            result = bench.run(server, options.scenario, options.seconds - 1, args.connections)
            sampler.wait(timeout=options.seconds + 30)
            step(f"{server.name}: {result.rps:.0f} rps; stacks in {output}")
            reports.append((server.name, result, *summarise(output.read_text())))
    for name, result, layers, functions, total in reports:
        per_request = 1e6 / RATE / result.requests  # µs of CPU per sample, per request
        print(f"\n### {name}: {options.scenario}, {result.rps:.0f} rps, {total} busy samples")
        print(f"CPU per request ≈ {total * per_request:.0f} µs (1/rps = {1e6 / result.rps:.0f} µs)")
        print("\n| layer | share | µs per request |\n|---|---:|---:|")
        for layer, samples in layers.most_common():
            print(f"| {layer} | {samples / total:.0%} | {samples * per_request:.0f} |")
        print("\n| app function (inclusive) | share | µs per request |\n|---|---:|---:|")
        for function, samples in functions.most_common(12):
            print(f"| {function} | {samples / total:.0%} | {samples * per_request:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
