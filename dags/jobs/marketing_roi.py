"""Tasks of the marketing-ROI example: generate a day of sample sales and ad data, and render the dashboard.

The extracts stand in for real source systems: they write deterministic CSV files (the same day and country always
give the same rows), so re-running a day reloads identical data and the warehouse merge stays idempotent.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

CHANNELS = ("search", "social", "display", "email")
# Average order value and how well each channel converts ad spend, per channel (sample-data shape only).
ORDER_VALUE = {"search": 80.0, "social": 55.0, "display": 40.0, "email": 65.0}
ORDERS_PER_DAY = 240


def _day_dir(data_dir: str, ds: str) -> Path:
    path = Path(data_dir) / ds
    path.mkdir(parents=True, exist_ok=True)
    return path


def sales_path(data_dir: str, ds: str, country: str) -> Path:
    return Path(data_dir) / ds / f"sales_{country}.csv"


def ads_path(data_dir: str, ds: str, country: str) -> Path:
    return Path(data_dir) / ds / f"ads_{country}.csv"


def extract_sales(data_dir: str, ds: str, params: dict[str, Any]) -> str:
    """One row per order: order_id, day, country, channel, revenue."""
    country = params["country"]
    rng = random.Random(f"sales:{ds}:{country}")
    _day_dir(data_dir, ds)
    path = sales_path(data_dir, ds, country)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["order_id", "day", "country", "channel", "revenue"])
        for i in range(ORDERS_PER_DAY):
            channel = rng.choices(CHANNELS, weights=(5, 3, 2, 2))[0]
            revenue = round(rng.gauss(ORDER_VALUE[channel], ORDER_VALUE[channel] / 4), 2)
            writer.writerow([f"{country}-{ds.replace('-', '')}-{i:04d}", ds, country, channel, max(revenue, 1.0)])
    print(f"wrote {ORDERS_PER_DAY} orders to {path}")
    return str(path)


def extract_ads(data_dir: str, ds: str, params: dict[str, Any]) -> str:
    """One row per campaign: day, country, channel, campaign, spend, clicks."""
    country = params["country"]
    rng = random.Random(f"ads:{ds}:{country}")
    _day_dir(data_dir, ds)
    path = ads_path(data_dir, ds, country)
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["day", "country", "channel", "campaign", "spend", "clicks"])
        for channel in CHANNELS:
            for n in range(1, 4):
                spend = round(rng.uniform(300, 1500), 2)
                writer.writerow([ds, country, channel, f"{channel}-{n}", spend, int(spend * rng.uniform(0.8, 2.5))])
                rows += 1
    print(f"wrote {rows} campaigns to {path}")
    return str(path)


def refresh_dashboard(data_dir: str, ds: str, params: dict[str, Any]) -> str:
    """Render the day's ROI per channel from the warehouse into a small HTML dashboard."""
    import html

    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    from meta import connection_url

    country = params["country"]
    engine = sa.create_engine(connection_url("warehouse"), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT channel, revenue, spend, roi FROM marketing_roi "
                    "WHERE day = CAST(:day AS DATE) AND country = :country ORDER BY roi DESC"
                ),
                {"day": ds, "country": country},
            ).all()
    finally:
        engine.dispose()
    if not rows:
        raise RuntimeError(f"marketing_roi has no rows for {ds} / {country}; did transform_roi run?")
    print(f"{'channel':<10} {'revenue':>10} {'spend':>10} {'roi':>7}")
    for channel, revenue, spend, roi in rows:
        print(f"{channel:<10} {revenue:>10.2f} {spend:>10.2f} {roi:>7.2f}")
    body = "".join(
        f"<tr><td>{html.escape(str(c))}</td><td>{r:.2f}</td><td>{s:.2f}</td><td>{roi:.2f}</td></tr>"
        for c, r, s, roi in rows
    )
    page = (
        f"<!doctype html><title>Marketing ROI {html.escape(ds)} {html.escape(country)}</title>"
        f"<h1>Marketing ROI, {html.escape(country)}, {html.escape(ds)}</h1>"
        f"<table><tr><th>channel</th><th>revenue</th><th>spend</th><th>roi</th></tr>{body}</table>\n"
    )
    out = Path(data_dir) / "dashboard" / f"marketing_roi_{country}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    print(f"dashboard: {out}")
    return str(out)
