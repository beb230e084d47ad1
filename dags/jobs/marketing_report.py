"""Tasks of the marketing report, the example's dependent pipeline: summarize the day's ROI, then publish it.

The report covers every country ``marketing_roi`` has loaded for the day (``ds``) and lands in
``<state dir>/reports/marketing_report_<ds>.md``. ``publish`` can be held back per country with
``MARKETING_REPORT_DELAY`` (``DE:12`` or ``DE:12,FR:3``: seconds, as a slow downstream system would), which
``make demo`` uses to show a run missing its SLA; unset, it takes no time.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

DELAY_ENV = "MARKETING_REPORT_DELAY"


def report_path(ds: str) -> Path:
    from meta import state_dir

    return state_dir().resolve() / "reports" / f"marketing_report_{ds}.md"


def summarize(ds: str) -> str:
    """Write each country's channels for ``ds``, best ROI first, as Markdown (read from the warehouse)."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    from meta import connection_url

    engine = sa.create_engine(connection_url("warehouse"), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT country, channel, revenue, spend, roi FROM marketing_roi "
                    "WHERE day = CAST(:day AS DATE) ORDER BY country, roi DESC"
                ),
                {"day": ds},
            ).all()
    finally:
        engine.dispose()
    if not rows:
        raise RuntimeError(f"marketing_roi has no rows for {ds}: the report runs after marketing_roi")
    lines = [f"# Marketing ROI, {ds}", ""]
    for country in sorted({r[0] for r in rows}):
        mine = [r for r in rows if r[0] == country]
        best, worst = mine[0], mine[-1]
        lines.append(
            f"- {country}: best **{best[1]}** (ROI {best[4]:.2f}), weakest **{worst[1]}** (ROI {worst[4]:.2f})"
        )
        print(f"{country}: best channel {best[1]} (roi {best[4]:.2f}), weakest {worst[1]} (roi {worst[4]:.2f})")
    lines += ["", "| country | channel | revenue | spend | roi |", "|---|---|---:|---:|---:|"]
    lines += [f"| {c} | {ch} | {r:.2f} | {s:.2f} | {roi:.2f} |" for c, ch, r, s, roi in rows]
    out = report_path(ds)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"report: {out}")
    return str(out)


def delays(setting: str | None = None) -> dict[str, float]:
    """Country -> seconds ``publish`` holds it back, from ``MARKETING_REPORT_DELAY`` (``DE:12,FR:3``)."""
    text = os.environ.get(DELAY_ENV, "") if setting is None else setting
    found = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, seconds = item.partition(":")
        try:
            found[name.strip().upper()] = float(seconds)
        except ValueError:
            raise ValueError(f"{DELAY_ENV}: expected COUNTRY:SECONDS like DE:12, got {item!r}") from None
    return found


def publish(ds: str) -> str:
    """Publish the day's report (here: check it is there and say where), held back per ``MARKETING_REPORT_DELAY``."""
    out = report_path(ds)
    if not out.exists():
        raise RuntimeError(f"no report at {out}: summarize writes it first")
    text = out.read_text(encoding="utf-8")
    wait = max((s for country, s in delays().items() if f"- {country}:" in text), default=0.0)
    if wait:
        print(f"{DELAY_ENV} holds this report back by {wait:g}s")
        time.sleep(wait)
    print(f"published {out}")
    return str(out)
