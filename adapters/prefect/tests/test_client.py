"""The REST client's errors, without a server."""

from __future__ import annotations

import httpx
import pytest
from meta_prefect.client import PrefectApiError, PrefectClient


def test_client_errors_name_method_url_and_status_without_credentials() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="x" * 2000)

    # A local transport standing in for a broken server: the error text is what is tested, not Prefect.
    http = httpx.Client(base_url="http://user:hunter2@prefect.invalid/api/", transport=httpx.MockTransport(handler))
    with pytest.raises(PrefectApiError) as info:
        PrefectClient(http).request("GET", "flows/x")
    text = str(info.value)
    assert "GET" in text and "500" in text and "flows/x" in text and len(text) < 700
    assert "hunter2" not in text
