-- Market data collected from the OSRS Wiki prices API.
-- Prices and volumes are BIGINT: prices reach 2,147,483,647 (the int4 maximum) and any
-- arithmetic on them (spreads, sums of volumes) overflows int4.
-- Time-partitioned tables have no DEFAULT partition: gept.db.partitions creates monthly
-- (or daily) partitions ahead of time, and every writer ensures the partitions it needs.

CREATE TABLE IF NOT EXISTS items (
    item_id      INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    examine      TEXT,
    members      BOOLEAN NOT NULL DEFAULT FALSE,
    tradeable    BOOLEAN NOT NULL DEFAULT TRUE,
    lowalch      BIGINT,
    highalch     BIGINT,
    cost         BIGINT,            -- /mapping "value"
    buy_limit    INTEGER,           -- /mapping "limit"; NULL when unknown
    icon         TEXT,
    wiki_url     TEXT,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_items_name_lower ON items (lower(name));
CREATE INDEX IF NOT EXISTS idx_items_buy_limit ON items (buy_limit) WHERE buy_limit IS NOT NULL;

CREATE TABLE IF NOT EXISTS price_data_5min (
    item_id            INTEGER     NOT NULL,
    "timestamp"        TIMESTAMPTZ NOT NULL,   -- start of the 5-minute block (UTC)
    avg_high_price     BIGINT,
    high_price_volume  BIGINT NOT NULL DEFAULT 0,
    avg_low_price      BIGINT,
    low_price_volume   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (item_id, "timestamp")
) PARTITION BY RANGE ("timestamp");
CREATE INDEX IF NOT EXISTS idx_5m_ts ON price_data_5min ("timestamp" DESC);

CREATE TABLE IF NOT EXISTS prices_latest_1m (
    item_id      INTEGER     NOT NULL,
    "timestamp"  TIMESTAMPTZ NOT NULL,          -- collection minute (UTC, aligned to 60 s)
    high         BIGINT,
    high_time    TIMESTAMPTZ,
    low          BIGINT,
    low_time     TIMESTAMPTZ,
    PRIMARY KEY (item_id, "timestamp")
) PARTITION BY RANGE ("timestamp");
CREATE INDEX IF NOT EXISTS idx_latest_1m_ts ON prices_latest_1m ("timestamp" DESC);

CREATE TABLE IF NOT EXISTS prices_1h (
    item_id            INTEGER     NOT NULL,
    "timestamp"        TIMESTAMPTZ NOT NULL,   -- start of the 1-hour block (UTC)
    avg_high_price     BIGINT,
    high_price_volume  BIGINT NOT NULL DEFAULT 0,
    avg_low_price      BIGINT,
    low_price_volume   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (item_id, "timestamp")
);
CREATE INDEX IF NOT EXISTS idx_1h_ts ON prices_1h ("timestamp" DESC);

CREATE TABLE IF NOT EXISTS osrs_news (
    guid         TEXT PRIMARY KEY,
    title        TEXT NOT NULL,
    link         TEXT,
    description  TEXT,
    category     TEXT,
    pub_date     TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_news_date ON osrs_news (pub_date DESC);

CREATE TABLE IF NOT EXISTS player_counts (
    "timestamp"  TIMESTAMPTZ PRIMARY KEY,       -- aligned to the collector's interval
    count        INTEGER NOT NULL CHECK (count >= 0),
    fetched_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS data_quality (
    id                    BIGSERIAL PRIMARY KEY,
    table_name            TEXT NOT NULL,
    item_id               INTEGER,              -- NULL = a table-wide gap
    gap_start             TIMESTAMPTZ NOT NULL,
    gap_end               TIMESTAMPTZ NOT NULL,
    gap_duration_seconds  INTEGER GENERATED ALWAYS AS
                          (EXTRACT(EPOCH FROM (gap_end - gap_start))::INTEGER) STORED,
    status                TEXT NOT NULL DEFAULT 'DETECTED'
                          CHECK (status IN ('DETECTED', 'BACKFILLING', 'BACKFILLED',
                                            'UNRECOVERABLE', 'IGNORED')),
    detected_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    resolved_at           TIMESTAMPTZ,
    backfill_attempts     INTEGER NOT NULL DEFAULT 0,
    backfill_source       TEXT,
    rows_recovered        BIGINT NOT NULL DEFAULT 0,
    error_message         TEXT,
    CHECK (gap_end >= gap_start)
);
-- NULLS NOT DISTINCT: a table-wide gap (item_id NULL) is recorded once, not once per run.
CREATE UNIQUE INDEX IF NOT EXISTS uq_data_quality_gap
    ON data_quality (table_name, item_id, gap_start) NULLS NOT DISTINCT;
CREATE INDEX IF NOT EXISTS idx_data_quality_open
    ON data_quality (table_name, gap_start) WHERE status IN ('DETECTED', 'BACKFILLING');

-- One row per collector run: the status page and the metrics read it.
CREATE TABLE IF NOT EXISTS collector_runs (
    id            BIGSERIAL PRIMARY KEY,
    collector     TEXT NOT NULL,
    block_time    TIMESTAMPTZ,                  -- the block the run collected, if any
    started_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at   TIMESTAMPTZ,
    status        TEXT NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running', 'ok', 'failed', 'skipped')),
    rows_written  BIGINT NOT NULL DEFAULT 0,
    rows_rejected BIGINT NOT NULL DEFAULT 0,
    error         TEXT
);
CREATE INDEX IF NOT EXISTS idx_collector_runs_latest ON collector_runs (collector, started_at DESC);
