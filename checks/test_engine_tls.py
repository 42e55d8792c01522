"""The engine as GePT's web app reaches it: over TLS from outside Ampere, with its key.

These checks run on the controller against the engine's public address (production: the
``engine_tls_domain`` Caddy holds a public certificate for; the lab: the published TLS port,
trusting the lab CA), never through SSH: they prove what Vercel will see.
"""

from __future__ import annotations

import httpx
import pytest
from checklib import Target

from gept.engine.webenv import controller_secret, endpoint, tls_verify
from gept.inventory import Host


def _endpoint(ampere: Target) -> tuple[str, str | bool, str]:
    ep = endpoint(Host(ampere.name, ampere.groups, ampere.data))
    return ep.url, ep.verify, ep.plain_url


def test_engine_answers_over_tls_with_its_key(ampere: Target) -> None:
    """The engine answers the web app's calls over TLS with the key, and refuses without it."""
    url, verify, _ = _endpoint(ampere)
    key = controller_secret("engine_api_key", ampere.data)
    with httpx.Client(verify=tls_verify(verify), timeout=10) as client:
        health = client.get(f"{url}/api/v1/health", headers={"X-API-Key": key})
        assert health.status_code == 200, f"{url}/api/v1/health: {health.status_code}"
        recs = client.get(f"{url}/api/v1/recommendations", params={"capital": 10_000_000},
                          headers={"X-API-Key": key})
        assert recs.status_code in (200, 503), recs.text[:300]
        assert isinstance(recs.json(), list) or recs.status_code == 503
        refused = client.get(f"{url}/api/v1/recommendations", params={"capital": 10_000_000})
        assert refused.status_code == 401, "the engine answered without X-API-Key"


def test_engine_refuses_plain_http(ampere: Target) -> None:
    """Plain HTTP gets no engine answer: not on the TLS port, not on the engine's port."""
    url, _, plain = _endpoint(ampere)
    tls_port_plain = "http://" + url.removeprefix("https://")
    resp = httpx.get(f"{tls_port_plain}/api/v1/health", timeout=10)
    assert resp.status_code == 400, f"plain HTTP on the TLS port answered {resp.status_code}"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{plain}/api/v1/health", timeout=5)
