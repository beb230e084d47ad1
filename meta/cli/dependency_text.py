"""The words of ``meta why`` and ``meta status P``: what a pipeline waits for, from the API's dependencies answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def explain(found: dict[str, Any], now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    name = found["pipeline"]
    lines: list[str] = []
    if not found["upstreams"]:
        lines.append(f"{name} depends on no other pipeline (no depends_on): its own schedule or a trigger starts it.")
    else:
        backends = ", ".join(found["upstreams"][0]["backends"]) or "no backend (it is placed nowhere)"
        lines.append(f"{name} is started by the control plane on {backends} when these have succeeded:")
        for edge in found["upstreams"]:
            what = edge["upstream"] + (f" (task {edge['task']})" if edge["task"] else "")
            where = f"on {edge['upstream_backend']}" if edge["upstream_backend"] else "on any backend"
            align = (
                "for the same logical date"
                if edge["align"] == "same"
                else f"within {edge['within']} before each of its own schedule slots"
            )
            lines.append(f"  - {what} {where}, {align}; gives up after {edge['timeout']}")
    for edge in found["downstreams"]:
        lines.append(f"{edge['pipeline']} waits for {name}" + (f" (task {edge['task']})" if edge["task"] else ""))
    waits = found["waits"]
    if found["upstreams"]:
        lines.append("")
        if not waits:
            lines.append("No upstream run seen since the control plane began driving it: nothing waits yet.")
    for wait in waits:
        lines.append(_wait_line(wait, now))
        for need in wait["waiting_for"]:
            mark = "ok " if need["satisfied"] else "..."
            lines.append(f"      {mark} {need['upstream']}: {need['detail']}")
    return "\n".join(lines)


def _wait_line(wait: dict[str, Any], now: datetime) -> str:
    head = f"  {wait['slot']} on {wait['backend']}: "
    state = wait["state"]
    if state == "triggered":
        upstream = ", ".join(f"{u['pipeline']} {u['run_id']} on {u['backend']}" for u in wait["upstream_runs"])
        return head + f"started run {wait['run_id']} at {_at(wait['triggered_at'])} after {upstream}"
    if state == "triggering":
        error = f" (last attempt: {wait['error']}; retried with the same key)" if wait.get("error") else ""
        return head + f"starting run {wait['trigger_key']}{error}"
    if state == "timed_out":
        alert = {"sent": "alerted", "none": "no alerts.on_failure channel to tell"}.get(
            wait.get("alert_status") or "", f"alert {wait.get('alert_status')}"
        )
        return head + (
            f"GAVE UP at {_at(wait['timed_out_at'])} after waiting since {_at(wait['since'])} ({alert}); "
            "start it by hand with `meta trigger` or `meta backfill`"
        )
    left = datetime.fromisoformat(wait["until"]) - now
    minutes = max(0, int(left.total_seconds() // 60))
    return head + f"WAITING since {_at(wait['since'])}, until {_at(wait['until'])} ({minutes} min left)"


def _at(value: str | None) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
