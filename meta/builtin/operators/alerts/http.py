"""POSTing JSON to a webhook with Slack's retry rules: honour 429 + Retry-After, back off on 5xx and network errors.

urllib, not httpx: httpx logs every request URL at INFO, and a webhook URL *is* the credential.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

from meta.spec.errors import MetaError


class AlertDeliveryError(MetaError, RuntimeError):
    """A channel could not deliver an alert. The message names the channel, never its URL or credentials."""


def retry_after_seconds(header: str | None, default: float) -> float:
    """Retry-After is either seconds or an HTTP date."""
    if not header:
        return default
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(header).timestamp() - time.time())
    except (TypeError, ValueError):
        return default


def post_json(
    channel: str,
    url: str,
    payload: dict[str, Any],
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    max_attempts: int = 5,
    backoff: float = 1.0,
    max_wait: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Send; return the attempts used. AlertDeliveryError on a 4xx other than 429, or when attempts run out."""
    body = json.dumps(payload).encode("utf-8")
    last = ""
    for attempt in range(1, max_attempts + 1):
        request = urllib.request.Request(  # noqa: S310 - http(s) URLs from channel config
            url, data=body, method=method, headers={"Content-Type": "application/json", **(headers or {})}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                response.read()
                return attempt
        except urllib.error.HTTPError as exc:
            status = exc.code
            text = exc.read()[:200].decode("utf-8", "replace").strip()
            last = f"HTTP {status}" + (f": {text}" if text else "")
            if status == 429:
                wait = min(max_wait, retry_after_seconds(exc.headers.get("Retry-After"), backoff * 2 ** (attempt - 1)))
            elif status >= 500:
                wait = min(max_wait, backoff * 2 ** (attempt - 1))
            else:
                raise AlertDeliveryError(f"channel {channel}: the webhook refused the alert ({last})") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            last = f"network error: {type(reason).__name__}"
            wait = min(max_wait, backoff * 2 ** (attempt - 1))
        if attempt < max_attempts:
            sleep(wait)
    raise AlertDeliveryError(f"channel {channel}: gave up after {max_attempts} attempts (last: {last})")
