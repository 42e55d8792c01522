-- The engine's own tables for GePT's web app and Discord bot (web-contract.md). Every table
-- is named engine_*: the engine's PostgreSQL role writes these and only reads the others.

-- Open and closed trades, as the web app reports them through POST /webhooks/trades.
-- user_id is the web app's raw user id: alerts pushed back (E1) must name it exactly.
CREATE TABLE IF NOT EXISTS engine_trades (
    trade_id        TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    item_id         INTEGER NOT NULL,
    item_name       TEXT NOT NULL,
    buy_price       BIGINT NOT NULL,
    sell_price      BIGINT NOT NULL,
    quantity        INTEGER NOT NULL,
    offset_pct      DOUBLE PRECISION,
    rec_id          TEXT,
    model_id        TEXT,
    expected_hours  INTEGER,
    status          TEXT NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'completed', 'cancelled')),
    profit          BIGINT,
    source          TEXT NOT NULL DEFAULT 'webhook'
                    CHECK (source IN ('webhook', 'resync-db', 'resync-http')),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    closed_at       TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS idx_engine_trades_open ON engine_trades (item_id) WHERE status = 'open';

-- Every accepted webhook delivery, by the sha256 of its signature: a replay is refused.
CREATE TABLE IF NOT EXISTS engine_webhook_deliveries (
    signature_sha256  TEXT PRIMARY KEY CHECK (length(signature_sha256) = 64),
    event_type        TEXT NOT NULL,
    trade_id          TEXT NOT NULL,
    sent_at           TIMESTAMPTZ NOT NULL,
    received_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_engine_webhook_deliveries_received
    ON engine_webhook_deliveries (received_at);

-- Alerts pushed to the web app (E1). One row per (trade, type, price): an alert is sent once.
CREATE TABLE IF NOT EXISTS engine_alerts (
    id               TEXT PRIMARY KEY,
    trade_id         TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    alert_type       TEXT NOT NULL CHECK (alert_type IN ('ADJUST_PRICE', 'SELL_NOW',
                                                         'SWITCH_ITEM', 'HOLD')),
    suggested_price  BIGINT,
    body             JSONB NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at          TIMESTAMPTZ,
    UNIQUE (trade_id, alert_type, suggested_price)
);
CREATE INDEX IF NOT EXISTS idx_engine_alerts_pending ON engine_alerts (created_at)
    WHERE status = 'pending';

-- Trade outcomes reported by the web app and the bot (W7). user_id is SHA-256 hex.
CREATE TABLE IF NOT EXISTS engine_outcomes (
    id             BIGSERIAL PRIMARY KEY,
    user_id        TEXT NOT NULL CHECK (user_id ~ '^[0-9a-f]{64}$'),
    rec_id         TEXT NOT NULL,
    item_id        INTEGER NOT NULL,
    item_name      TEXT NOT NULL,
    offset_pct     DOUBLE PRECISION,
    buy_price      BIGINT NOT NULL,
    sell_price     BIGINT NOT NULL,
    quantity       INTEGER NOT NULL,
    actual_profit  BIGINT NOT NULL,
    reported_at    TIMESTAMPTZ NOT NULL,
    received_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_engine_outcomes_user ON engine_outcomes (user_id, reported_at);

-- Structured feedback on recommendations (W8).
CREATE TABLE IF NOT EXISTS engine_feedback (
    id                 BIGSERIAL PRIMARY KEY,
    user_id            TEXT NOT NULL CHECK (user_id ~ '^[0-9a-f]{64}$'),
    item_id            INTEGER NOT NULL,
    item_name          TEXT NOT NULL,
    feedback_type      TEXT NOT NULL CHECK (feedback_type IN (
                           'price_too_high', 'price_too_low', 'volume_too_low',
                           'filled_quickly', 'filled_slowly', 'did_not_fill',
                           'spread_too_wide', 'price_manipulation', 'other')),
    rec_id             TEXT,
    offset_pct         DOUBLE PRECISION,
    side               TEXT CHECK (side IN ('buy', 'sell')),
    notes              TEXT,
    recommended_price  BIGINT,
    actual_price       BIGINT,
    submitted_at       TIMESTAMPTZ NOT NULL,
    received_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_engine_feedback_time ON engine_feedback (submitted_at);
