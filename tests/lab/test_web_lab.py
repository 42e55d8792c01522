"""GePT's web app against the lab's Ampere, over TLS: a trade created through the signed
webhook, one signed alert pushed to a stand-in of the web app's alerts endpoint, and the
trade (and the alert's once-only delivery) surviving an engine restart.

The stand-in runs on Ampere at the lab's ``web_alerts_url`` (127.0.0.1:8099) and verifies
each alert's HMAC exactly as the web app's ``/api/webhooks/alerts`` does. The simulator has
no price control, so the trade is created with a sell price above the market the 1-minute
collector just stored: to the engine this is the same as the item's price falling below the
trade's sell price.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from gept import demo
from gept.engine.webenv import controller_secret, endpoint, tls_verify
from gept.engine.webhook import sign

STANDIN = r'''
import hashlib, hmac, json, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
SECRET = open("/etc/gept/webhook_secret").read().strip()
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        ts = self.headers.get("X-Webhook-Timestamp", "")
        sig = self.headers.get("X-Webhook-Signature", "")
        good = hmac.new(SECRET.encode(), ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
        fresh = ts.isdigit() and abs(time.time() * 1000 - int(ts)) <= 300_000
        ok = fresh and hmac.compare_digest(good, sig)
        with open("/root/standin-alerts.jsonl", "a") as fh:
            fh.write(json.dumps({"verified": ok, "body": json.loads(raw)}) + "\n")
        self.send_response(200 if ok else 401)
        self.end_headers()
        self.wfile.write(b'{"success": true}')
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("127.0.0.1", 8099), H).serve_forever()
'''
PSQL = "runuser -u postgres -- psql -d osrs_data -tAc "
pytestmark = pytest.mark.timeout(2400)


def _received(lab: Any) -> list[dict[str, Any]]:
    out = lab.run("ampere", "cat /root/standin-alerts.jsonl 2>/dev/null").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _wait(what: str, probe: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_a_trade_gets_one_signed_alert_and_survives_a_restart(converged_lab: Any) -> None:
    lab = converged_lab
    ampere = lab.inventory.host("ampere")
    ep = endpoint(ampere)
    key = controller_secret("engine_api_key", ampere.data)
    secret = controller_secret("webhook_secret", ampere.data)
    lab.sh("ampere", "test -f /root/standin.pid && kill $(cat /root/standin.pid); "
                     "rm -f /root/standin-alerts.jsonl /root/standin.pid; true")
    lab.sh("ampere", f"cat > /root/standin.py <<'EOF'\n{STANDIN}\nEOF\n"
                     "nohup python3 /root/standin.py >/dev/null 2>&1 & echo $! > /root/standin.pid")
    latest = _wait("a price from the 1-minute collector", lambda: lab.run("ampere", PSQL + (
        "\"SELECT item_id || ' ' || high FROM prices_latest_1m WHERE high > 1000 "
        "AND timestamp > now() - interval '10 minutes' ORDER BY timestamp DESC, item_id "
        "LIMIT 1\"")).stdout.strip(), 180)
    item, high = (int(x) for x in latest.split())
    trade = f"lab-trade-{int(time.time())}"
    body = json.dumps({
        "eventType": "TRADE_CREATED", "timestamp": "2026-12-01T00:00:00Z", "userId": "lab-user",
        "tradeId": trade, "payload": {"itemId": item, "itemName": f"Item {item}",
                                      "buyPrice": int(high * 0.9), "sellPrice": int(high * 1.1),
                                      "quantity": 1, "recId": f"opp-{item}", "modelId": "1",
                                      "expectedHours": 4}}).encode()
    ts, sig = sign(secret, body)
    with httpx.Client(verify=tls_verify(ep.verify), timeout=10) as client:
        created = client.post(f"{ep.url}/webhooks/trades", content=body, headers={
            "Content-Type": "application/json", "X-Webhook-Timestamp": ts,
            "X-Webhook-Signature": sig})
        assert created.status_code == 200, created.text
        replay = client.post(f"{ep.url}/webhooks/trades", content=body, headers={
            "Content-Type": "application/json", "X-Webhook-Timestamp": ts,
            "X-Webhook-Signature": sig})
        assert replay.status_code == 401
    alerts = _wait("the stand-in to receive an alert",
                   lambda: [a for a in _received(lab)
                            if a["body"]["alert"]["tradeId"] == trade], 90)
    assert len(alerts) == 1, alerts
    assert alerts[0]["verified"] is True
    assert alerts[0]["body"]["userId"] == "lab-user"
    assert alerts[0]["body"]["alert"]["type"] in ("ADJUST_PRICE", "SELL_NOW")

    lab.sh("ampere", "systemctl restart recommendation-engine.service")
    with httpx.Client(verify=tls_verify(ep.verify), timeout=10) as client:
        _wait("the engine to answer again over TLS", lambda: _ok(client, ep.url, key), 120)
    known = lab.sh("ampere", PSQL + f"\"SELECT status FROM engine_trades "
                                    f"WHERE trade_id = '{trade}'\"").strip()
    assert known == "open"
    time.sleep(25)                       # two monitor passes of the restarted engine
    again = [a for a in _received(lab) if a["body"]["alert"]["tradeId"] == trade]
    assert len(again) == 1, again

    cancel = body.replace(b"TRADE_CREATED", b"TRADE_CANCELLED")
    ts, sig = sign(secret, cancel)
    httpx.post(f"{ep.url}/webhooks/trades", content=cancel, verify=tls_verify(ep.verify),
               timeout=10, headers={"Content-Type": "application/json", "X-Webhook-Timestamp": ts,
                        "X-Webhook-Signature": sig})
    lab.run("ampere", "kill $(cat /root/standin.pid); rm -f /root/standin.pid")
    assert demo.lab_ca() == str(ep.verify)


def _ok(client: httpx.Client, url: str, key: str) -> bool:
    try:
        return client.get(f"{url}/api/v1/health", headers={"X-API-Key": key}).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_engine_is_reached_only_over_tls(converged_lab: Any) -> None:
    ampere = converged_lab.inventory.host("ampere")
    ep = endpoint(ampere)
    key = controller_secret("engine_api_key", ampere.data)
    recs = httpx.get(f"{ep.url}/api/v1/recommendations", params={"capital": 10_000_000},
                     headers={"X-API-Key": key}, verify=tls_verify(ep.verify), timeout=10)
    assert recs.status_code == 200
    assert isinstance(recs.json(), list)
    plain = httpx.get("http://" + ep.url.removeprefix("https://") + "/api/v1/health",
                      timeout=10)
    assert plain.status_code == 400          # Caddy: an HTTP request to an HTTPS server
    try:
        httpx.get(f"{ep.plain_url}/api/v1/health", timeout=5)
        raise AssertionError("the engine's own port answered from outside Ampere")
    except httpx.TransportError:
        pass
    ss = converged_lab.sh("ampere", "ss -ltnH 'sport = :8000'")
    assert "127.0.0.1:8000" in ss, ss
    assert "0.0.0.0:8000" not in ss, ss
