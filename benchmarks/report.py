"""From the runs to the verdict: medians over the rounds, the targets, and the markdown the
harness prints (benchmarks.run)."""

import argparse
import statistics
from collections.abc import Sequence
from typing import Any

APPS = ("api", "baseline")
LABELS = {
    "list": "list (first page)",
    "list_q": "list with q",
    "get": "get by id",
    "create": "create",
    "patch": "patch with If-Match",
}
# The targets. Throughput at saturation, API/baseline: the API must be faster where its
# fixed overhead is paid back (list), and at least as fast everywhere else.
THROUGHPUT_TARGETS = {"list": 1.2, "list_q": 1.0, "get": 1.0, "create": 1.0, "patch": 1.0}
# At the same offered load, the API's p99 must not exceed the baseline's in any scenario;
# and its memory must stay within this factor of the baseline's.
RSS_RATIO_TARGET = 1.5


def medians(runs: list[dict[str, Any]], phase: str, scenario: str, app: str) -> dict[str, Any]:
    mine = [
        run
        for run in runs
        if run["phase"] == phase and run["scenario"] == scenario and run["app"] == app
    ]
    row: dict[str, Any] = {
        key: round(statistics.median(run[key] for run in mine), 2)
        for key in ("rps", "p50_ms", "p99_ms")
    }
    row["errors"] = sum(sum(run["errors"].values()) for run in mine)
    return row


def summarise(
    runs: list[dict[str, Any]], scenarios: Sequence[str], processes: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Medians per phase, scenario and app; the processes; every target with its verdict."""
    saturation, equal_load = {}, {}
    for scenario in scenarios:
        row = {app: medians(runs, "saturation", scenario, app) for app in APPS}
        ratio = row["api"]["rps"] / row["baseline"]["rps"]
        target = THROUGHPUT_TARGETS[scenario]
        saturation[scenario] = row | {
            "ratio": round(ratio, 3),
            "ratio_target": target,
            "met": ratio >= target,
        }
        row = {app: medians(runs, "equal_load", scenario, app) for app in APPS}
        equal_load[scenario] = row | {"met": row["api"]["p99_ms"] <= row["baseline"]["p99_ms"]}
    rss_ratio = processes["api"]["rss_mib"] / processes["baseline"]["rss_mib"]
    summary = {
        "saturation": saturation,
        "equal_load": equal_load,
        "processes": processes,
        "rss_ratio": round(rss_ratio, 3),
    }
    return summary | {"targets": targets(summary)}


def targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    result = []
    for scenario, row in summary["saturation"].items():
        result.append(
            {
                "target": f"{LABELS[scenario]}: API/baseline throughput at saturation "
                f"≥ {row['ratio_target']:.1f}",
                "value": f"{row['ratio']:.2f}",
                "met": row["met"],
            }
        )
    for scenario, row in summary["equal_load"].items():
        api, base = row["api"]["p99_ms"], row["baseline"]["p99_ms"]
        result.append(
            {
                "target": f"{LABELS[scenario]}: API p99 ≤ baseline p99 at equal load",
                "value": f"{api:.1f} ms vs {base:.1f} ms",
                "met": row["met"],
            }
        )
    result.append(
        {
            "target": f"API RSS ≤ {RSS_RATIO_TARGET:g} x baseline RSS",
            "value": f"{summary['rss_ratio']:.2f} x",
            "met": summary["rss_ratio"] <= RSS_RATIO_TARGET,
        }
    )
    return result


def _yes(met: bool) -> str:
    return "yes" if met else "**no**"


def saturation_table(rows: dict[str, Any], connections: int) -> str:
    lines = [
        f"### Saturation: {connections} connections, closed loop (no think time)",
        "",
        "| scenario | API rps | baseline rps | API/baseline | target | met "
        "| API p50 ms | API p99 ms | baseline p50 ms | baseline p99 ms |",
        "|---|---:|---:|---:|---|---|---:|---:|---:|---:|",
    ]
    for scenario, row in rows.items():
        api, base = row["api"], row["baseline"]
        lines.append(
            f"| {LABELS[scenario]} | {api['rps']:.0f} | {base['rps']:.0f} | {row['ratio']:.2f} "
            f"| ≥ {row['ratio_target']:.1f} | {_yes(row['met'])} "
            f"| {api['p50_ms']:.1f} | {api['p99_ms']:.1f} "
            f"| {base['p50_ms']:.1f} | {base['p99_ms']:.1f} |"
        )
    return "\n".join(lines)


def equal_load_table(rows: dict[str, Any], connections: int, delay_ms: float) -> str:
    lines = [
        f"### Equal offered load: {connections} connections, {delay_ms:g} ms think time "
        "before each request",
        "",
        "| scenario | API rps | baseline rps | API p50 ms | API p99 ms | baseline p50 ms "
        "| baseline p99 ms | API p99 ≤ baseline p99 |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for scenario, row in rows.items():
        api, base = row["api"], row["baseline"]
        lines.append(
            f"| {LABELS[scenario]} | {api['rps']:.0f} | {base['rps']:.0f} "
            f"| {api['p50_ms']:.1f} | {api['p99_ms']:.1f} "
            f"| {base['p50_ms']:.1f} | {base['p99_ms']:.1f} | {_yes(row['met'])} |"
        )
    return "\n".join(lines)


def process_table(processes: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        f"### Processes: pool {args.pool_size} connections, statement cache "
        f"{args.statement_cache_size}, after all runs",
        "",
        "| app | RSS MiB | new PostgreSQL sessions during the runs | access-log lines |",
        "|---|---:|---:|---:|",
    ]
    for app, row in processes.items():
        lines.append(
            f"| {app} | {row['rss_mib']:.1f} | {row['new_sessions']} | {row['access_log_lines']} |"
        )
    return "\n".join(lines)


def failures(summary: dict[str, Any]) -> str:
    errors = [
        f"{app} {phase} {scenario}: {row[app]['errors']} failed requests"
        for phase in ("saturation", "equal_load")
        for scenario, row in summary[phase].items()
        for app in APPS
        if row[app]["errors"]
    ]
    return "Failed requests (non-2xx or socket errors): " + "; ".join(errors) if errors else ""


def render(summary: dict[str, Any], args: argparse.Namespace) -> str:
    verdicts = [
        f"- {'PASS' if row['met'] else 'FAIL'}  {row['target']}: {row['value']}"
        for row in summary["targets"]
    ]
    parts = [
        saturation_table(summary["saturation"], args.connections),
        equal_load_table(summary["equal_load"], args.connections, args.delay_ms),
        process_table(summary["processes"], args),
        failures(summary),
        "### Targets\n\n" + "\n".join(verdicts),
    ]
    return "\n\n".join(part for part in parts if part)
