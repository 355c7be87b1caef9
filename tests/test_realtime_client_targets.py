"""URL, query and header building for every provider and dialect."""
import asyncio

import pytest

from conversations.realtime.client import (
    GA,
    PREVIEW,
    EntraTokenProvider,
    RealtimeTarget,
    auth_headers,
    azure_target,
    openai_target,
)


def test_azure_without_api_version_uses_the_ga_v1_path():
    target = azure_target(endpoint="https://res.openai.azure.com/", deployment="gpt-realtime", api_key="k")
    assert target.url == "wss://res.openai.azure.com/openai/v1/realtime?model=gpt-realtime"
    assert target.dialect == GA
    assert "api-version" not in target.url


def test_azure_with_api_version_uses_the_preview_path_and_dialect():
    target = azure_target(
        endpoint="https://res.openai.azure.com", deployment="my-rt", api_version="2025-04-01-preview", api_key="k"
    )
    assert target.url == "wss://res.openai.azure.com/openai/realtime?api-version=2025-04-01-preview&deployment=my-rt"
    assert target.dialect == PREVIEW


def test_http_endpoint_of_a_local_simulator_maps_to_ws():
    target = azure_target(endpoint="http://127.0.0.1:8765/", deployment="gpt-realtime", api_key="k")
    assert target.url.startswith("ws://127.0.0.1:8765/openai/v1/realtime?")


def test_endpoint_with_a_path_keeps_only_the_host():
    target = azure_target(endpoint="https://res.openai.azure.com/openai/v1/", deployment="d", api_key="k")
    assert target.url == "wss://res.openai.azure.com/openai/v1/realtime?model=d"


def test_deployment_names_are_query_escaped():
    target = azure_target(endpoint="https://r.openai.azure.com/", deployment="a b&c", api_key="k")
    assert target.url.endswith("?model=a+b%26c")


def test_openai_target_is_ga_with_bearer_auth():
    target = openai_target(api_key="sk-test", model="gpt-realtime")
    assert target.url == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    assert target.dialect == GA
    assert asyncio.run(auth_headers(target)) == {"Authorization": "Bearer sk-test"}


def test_azure_key_goes_in_the_api_key_header():
    target = azure_target(endpoint="https://r.openai.azure.com/", deployment="d", api_key="secret")
    assert asyncio.run(auth_headers(target)) == {"api-key": "secret"}


def test_key_is_not_in_the_repr():
    target = azure_target(endpoint="https://r.openai.azure.com/", deployment="d", api_key="secret")
    assert "secret" not in repr(target)


def test_keyless_azure_uses_an_entra_bearer_token():
    target = azure_target(endpoint="https://r.openai.azure.com/", deployment="d")

    async def token() -> str:
        return "entra-token"

    assert asyncio.run(auth_headers(target, token)) == {"Authorization": "Bearer entra-token"}


def test_keyless_without_a_token_provider_is_an_error():
    from conversations.realtime.client import UpstreamError

    target = azure_target(endpoint="https://r.openai.azure.com/", deployment="d")
    with pytest.raises(UpstreamError):
        asyncio.run(auth_headers(target))


class FakeCredential:
    """Stands in for azure-identity's async credential: counts token requests."""

    def __init__(self, expires_in: float) -> None:
        self.calls = 0
        self.expires_in = expires_in
        self.scopes: list[str] = []

    async def get_token(self, scope: str):
        import time
        from types import SimpleNamespace

        self.calls += 1
        self.scopes.append(scope)
        return SimpleNamespace(token=f"t{self.calls}", expires_on=time.time() + self.expires_in)


def test_entra_tokens_are_cached_until_close_to_expiry():
    credential = FakeCredential(expires_in=3600)
    provider = EntraTokenProvider(credential)

    async def twice():
        return await provider(), await provider()

    assert asyncio.run(twice()) == ("t1", "t1")
    assert credential.calls == 1
    assert credential.scopes == ["https://cognitiveservices.azure.com/.default"]


def test_entra_tokens_about_to_expire_are_refreshed():
    credential = FakeCredential(expires_in=60)  # inside the refresh margin
    provider = EntraTokenProvider(credential)

    async def twice():
        return await provider(), await provider()

    assert asyncio.run(twice()) == ("t1", "t2")


def test_bad_endpoint_is_rejected():
    with pytest.raises(ValueError):
        azure_target(endpoint="res.openai.azure.com", deployment="d", api_key="k")


def test_target_is_immutable():
    target = RealtimeTarget(provider="azure", dialect=GA, url="wss://x", deployment="d")
    with pytest.raises(Exception):
        target.url = "wss://y"  # type: ignore[misc]


def test_a_failing_entra_credential_reads_as_refused_credentials():
    from conversations.realtime.client import UpstreamRejected

    class NoIdentity:
        async def get_token(self, scope: str):
            raise RuntimeError("DefaultAzureCredential failed to retrieve a token")

    target = azure_target(endpoint="https://r.openai.azure.com/", deployment="d")
    with pytest.raises(UpstreamRejected) as info:
        asyncio.run(auth_headers(target, EntraTokenProvider(NoIdentity())))
    assert info.value.status == 401 and "DefaultAzureCredential" in info.value.detail


@pytest.mark.parametrize("version", ["2025-08-28", "2025-08-28 ", "v1", "latest"])
def test_an_api_version_without_preview_selects_the_ga_path_and_is_not_sent(version):
    target = azure_target(endpoint="https://r.openai.azure.com/", deployment="gpt-realtime", api_version=version, api_key="k")
    assert target.dialect == GA
    assert target.url == "wss://r.openai.azure.com/openai/v1/realtime?model=gpt-realtime"


@pytest.mark.parametrize("version", ["2025-04-01-preview", "2024-12-17-PREVIEW", " 2025-04-01-preview"])
def test_only_a_preview_api_version_selects_the_preview_dialect(version):
    target = azure_target(endpoint="https://r.openai.azure.com/", deployment="d", api_version=version, api_key="k")
    assert target.dialect == PREVIEW
    assert target.url.startswith("wss://r.openai.azure.com/openai/realtime?api-version=")
    assert version.strip() in target.url


@pytest.mark.parametrize(("header", "body", "wait"), [
    ("7", "", 7.0),
    (None, '{"error":{"code":"429","message":"Requests to the Realtime operation have exceeded the rate limit of '
     'your current pricing tier. Please retry after 12 seconds."}}', 12.0),
    (None, "Please retry after 1 second.", 1.0),
    ("Wed, 21 Oct 2026 07:28:00 GMT", "Please retry after 4 seconds.", 4.0),
    (None, "Too many requests", None),
])
def test_a_429_wait_is_read_from_retry_after_or_from_the_message(header, body, wait):
    from conversations.realtime.client import retry_after

    assert retry_after(header, body) == wait
