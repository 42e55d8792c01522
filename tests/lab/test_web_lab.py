"""GePT's web app against the lab's Ampere, over TLS: a trade created through the signed
webhook, its item's price dropping in the market simulator, one signed alert pushed to a
stand-in of the web app's alerts endpoint, and the trade (and the alert's once-only
delivery) surviving an engine restart.

The stand-in runs on Ampere at the lab's ``web_alerts_url`` (127.0.0.1:8099) and verifies
each alert's HMAC exactly as the web app's ``/api/webhooks/alerts`` does. The drop is a
scripted move of the simulator (``POST /_sim/moves``, its control API): the real 1-minute
collector reads it from ``/latest`` and stores it, and the engine's price-drop monitor sees
it in ``prices_latest_1m`` as it would see a real market fall.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from gept.engine.webenv import controller_secret, endpoint, tls_verify
from gept.engine.webhook import sign
from gept.lab import workload

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


SIM = "http://127.0.0.1:8090/_sim/moves"  # the demo's simulator on Ampere (workload.SIM_PORT)
DROP = 0.25
"""How far the item falls: far beyond its own noise over the test's few minutes (< 3 %)."""


def _liquid_item(lab: Any) -> tuple[int, int]:
    """An item that traded in each of the last collected minutes, and its current high.

    Only an item that trades every minute shows a drop in ``/latest`` at once (a thin one
    keeps its last, older trade, as on the real exchange).
    """
    row = _wait("a liquid item from the 1-minute collector", lambda: lab.run("ampere", PSQL + (
        "\"SELECT item_id FROM prices_latest_1m WHERE high > 1000 "
        "AND timestamp > now() - interval '5 minutes' "
        "AND high_time > timestamp - interval '2 minutes' "
        "GROUP BY item_id HAVING count(*) >= 3 ORDER BY count(*) DESC, item_id LIMIT 1\""
    )).stdout.strip(), 300)
    item = int(row)
    return item, _high(lab, item)


def _high(lab: Any, item: int, since: str = "1970-01-01") -> int:
    """The newest high the collector stored for ``item`` with a trade after ``since`` (0: none)."""
    out = lab.run("ampere", PSQL + (
        f"\"SELECT high FROM prices_latest_1m WHERE item_id = {item} "
        f"AND high_time >= '{since}' ORDER BY timestamp DESC LIMIT 1\"")).stdout.strip()
    return int(out) if out else 0


def _post(client: httpx.Client, url: str, secret: str, body: bytes) -> httpx.Response:
    ts, sig = sign(secret, body)
    return client.post(url, content=body, headers={
        "Content-Type": "application/json", "X-Webhook-Timestamp": ts,
        "X-Webhook-Signature": sig})


def test_a_price_drop_gets_one_signed_alert_and_survives_a_restart(converged_lab: Any) -> None:
    lab = converged_lab
    ampere = lab.inventory.host("ampere")
    ep = endpoint(ampere)
    key = controller_secret("engine_api_key", ampere.data)
    secret = controller_secret("webhook_secret", ampere.data)
    lab.sh("ampere", "test -f /root/standin.pid && kill $(cat /root/standin.pid); "
                     "rm -f /root/standin-alerts.jsonl /root/standin.pid; true")
    lab.sh("ampere", f"cat > /root/standin.py <<'EOF'\n{STANDIN}\nEOF\n"
                     "nohup python3 /root/standin.py >/dev/null 2>&1 & echo $! > /root/standin.pid")
    lab.sh("ampere", f"curl -fsS -X DELETE {SIM}")               # the seeded market alone
    item, high = _liquid_item(lab)
    trade = f"lab-trade-{int(time.time())}"
    # Listed a little under the market: it fills as long as the price holds, so no alert
    # is due until the price falls; the buy price leaves room to relist at the new high.
    body = json.dumps({
        "eventType": "TRADE_CREATED", "timestamp": "2026-12-01T00:00:00Z", "userId": "lab-user",
        "tradeId": trade, "payload": {"itemId": item, "itemName": f"Item {item}",
                                      "buyPrice": int(high * 0.6), "sellPrice": int(high * 0.95),
                                      "quantity": 1, "recId": f"opp-{item}", "modelId": "1",
                                      "expectedHours": 4}}).encode()
    client = httpx.Client(verify=tls_verify(ep.verify), timeout=10)
    try:
        ts, sig = sign(secret, body)
        signed = {"Content-Type": "application/json", "X-Webhook-Timestamp": ts,
                  "X-Webhook-Signature": sig}
        created = client.post(f"{ep.url}/webhooks/trades", content=body, headers=signed)
        assert created.status_code == 200, created.text
        replay = client.post(f"{ep.url}/webhooks/trades", content=body, headers=signed)
        assert replay.status_code == 401

        # Before the drop: new prices collected, two monitor passes, and no alert.
        listed_at = lab.sh("ampere", "date -u +%FT%TZ").strip()
        _wait("a price collected after the trade", lambda: _high(lab, item, listed_at), 150)
        time.sleep(25)
        assert [a for a in _received(lab) if a["body"]["alert"]["tradeId"] == trade] == []

        moves = json.loads(lab.sh("ampere", (
            f"curl -fsS -X POST -H 'Content-Type: application/json' "
            f"-d '{{\"item\": {item}, \"change\": -{DROP}}}' {SIM}")))
        since = moves["moves"][-1]["since"]            # the simulator's clock: trades after it
        dropped_at = datetime.fromtimestamp(since, UTC).isoformat()
        fallen = _wait("the collector to store the fallen price",
                       lambda: _high(lab, item, dropped_at), 180)
        assert fallen < high * (1 - DROP + 0.05), (fallen, high)
        alerts = _wait("the stand-in to receive an alert",
                       lambda: [a for a in _received(lab)
                                if a["body"]["alert"]["tradeId"] == trade], 90)
        assert len(alerts) == 1, alerts
        alert = alerts[0]
        assert alert["verified"] is True
        assert alert["body"]["userId"] == "lab-user"
        assert alert["body"]["alert"]["type"] in ("ADJUST_PRICE", "SELL_NOW")
        suggested = (alert["body"]["alert"].get("newSellPrice")
                     or alert["body"]["alert"].get("adjustedSellPrice"))
        assert suggested <= high * (1 - DROP + 0.05), (suggested, high)  # the fallen market

        lab.sh("ampere", "systemctl restart recommendation-engine.service")
        _wait("the engine to answer again over TLS", lambda: _ok(client, ep.url, key), 120)
        known = lab.sh("ampere", PSQL + f"\"SELECT status FROM engine_trades "
                                        f"WHERE trade_id = '{trade}'\"").strip()
        assert known == "open"
        time.sleep(25)                       # two monitor passes of the restarted engine
        again = [a for a in _received(lab) if a["body"]["alert"]["tradeId"] == trade]
        assert len(again) == 1, again
    finally:
        _post(client, f"{ep.url}/webhooks/trades", secret,
              body.replace(b"TRADE_CREATED", b"TRADE_CANCELLED"))
        client.close()
        lab.run("ampere", f"curl -fsS -X DELETE {SIM}; kill $(cat /root/standin.pid); "
                          "rm -f /root/standin.pid")
    assert workload.lab_ca() == str(ep.verify)


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
