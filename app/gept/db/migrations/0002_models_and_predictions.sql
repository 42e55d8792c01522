-- gept:zone predictions-schema
-- ML tables: the model registry, training jobs, inference runs and the predictions the
-- engine serves. Any migration that touches `predictions` carries the zone marker above
-- (gept.db.migrate refuses it without a coordination token once a database has predictions).

CREATE TABLE IF NOT EXISTS model_registry (
    id                         BIGSERIAL PRIMARY KEY,
    scope                      TEXT NOT NULL,       -- 'global', 'group:<name>' or 'item:<id>'
    run_id                     TEXT NOT NULL,       -- YYYYMMDD_HHMMSS of the training job
    model_path                 TEXT NOT NULL,       -- relative to GEPT_MODELS_DIR
    artifact_sha256            TEXT NOT NULL CHECK (length(artifact_sha256) = 64),
    status                     TEXT NOT NULL DEFAULT 'PENDING'
                               CHECK (status IN ('PENDING', 'ACTIVE', 'DEPRECATED',
                                                 'SUNSET', 'ARCHIVED')),
    status_changed_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    status_reason              TEXT,
    trained_at                 TIMESTAMPTZ NOT NULL DEFAULT now(),
    training_duration_seconds  REAL,
    task_type                  TEXT,
    item_ids                   INTEGER[],           -- items the model was trained on
    windows_hours              INTEGER[] NOT NULL,
    offsets_pct                NUMERIC(5,4)[] NOT NULL,
    feature_names              TEXT[],
    n_samples                  INTEGER,
    iterations_used            INTEGER,
    mean_auc                   NUMERIC(5,4),
    validation_auc             NUMERIC(5,4),
    validation_passed          BOOLEAN NOT NULL DEFAULT FALSE,
    metrics                    JSONB NOT NULL DEFAULT '{}'::jsonb,
    activated_at               TIMESTAMPTZ,
    deprecated_at              TIMESTAMPTZ,
    sunset_at                  TIMESTAMPTZ,
    archived_at                TIMESTAMPTZ,
    replaces_model_id          BIGINT REFERENCES model_registry (id),
    created_at                 TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (scope, run_id),
    -- A model that failed validation can never be ACTIVE.
    CHECK (status <> 'ACTIVE' OR validation_passed)
);
-- Never two ACTIVE models for one scope (promotion swaps them in one transaction).
CREATE UNIQUE INDEX IF NOT EXISTS uq_model_registry_one_active
    ON model_registry (scope) WHERE status = 'ACTIVE';
CREATE INDEX IF NOT EXISTS idx_model_registry_status ON model_registry (status, status_changed_at);

CREATE TABLE IF NOT EXISTS training_jobs (
    id                         BIGSERIAL PRIMARY KEY,
    run_id                     TEXT NOT NULL UNIQUE,
    status                     TEXT NOT NULL DEFAULT 'PENDING'
                               CHECK (status IN ('PENDING', 'PREPARING', 'TRAINING',
                                                 'VALIDATING', 'COMPLETED', 'FAILED')),
    status_changed_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at                 TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at                 TIMESTAMPTZ,
    completed_at               TIMESTAMPTZ,
    config                     JSONB NOT NULL DEFAULT '{}'::jsonb,
    items_count                INTEGER,
    models_trained             INTEGER NOT NULL DEFAULT 0,
    models_passed              INTEGER NOT NULL DEFAULT 0,
    training_host              TEXT,
    task_type                  TEXT,
    training_duration_seconds  REAL,
    error_message              TEXT
);

CREATE TABLE IF NOT EXISTS inference_runs (
    id             BIGSERIAL PRIMARY KEY,
    run_id         TEXT NOT NULL UNIQUE,
    role           TEXT NOT NULL CHECK (role IN ('primary', 'fallback')),
    host           TEXT NOT NULL,
    block_time     TIMESTAMPTZ,                 -- the 5-minute block the batch predicts from
    started_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at    TIMESTAMPTZ,
    status         TEXT NOT NULL DEFAULT 'running'
                   CHECK (status IN ('running', 'completed', 'failed', 'skipped')),
    rows_written   BIGINT NOT NULL DEFAULT 0,
    items_predicted INTEGER NOT NULL DEFAULT 0,
    model_ids      BIGINT[] NOT NULL DEFAULT '{}',
    error          TEXT
);
CREATE INDEX IF NOT EXISTS idx_inference_runs_latest ON inference_runs (started_at DESC);

-- The predictions the engine serves. Partitioned by day on the batch time, so retention drops
-- whole partitions. A batch is written with COPY in one transaction together with its row in
-- prediction_batches: readers find the newest batch there and never see half of one.
CREATE TABLE IF NOT EXISTS predictions (
    "time"            TIMESTAMPTZ NOT NULL,       -- batch time (the block predicted from)
    item_id           INTEGER     NOT NULL,
    item_name         TEXT        NOT NULL,
    hour_offset       SMALLINT    NOT NULL,       -- window in hours
    target_hour       TIMESTAMPTZ NOT NULL,       -- time + hour_offset
    offset_pct        NUMERIC(5,4) NOT NULL,      -- 0.0125 = 1.25 %
    fill_probability  DOUBLE PRECISION NOT NULL CHECK (fill_probability BETWEEN 0 AND 1),
    expected_value    DOUBLE PRECISION NOT NULL,  -- probability x net return after GE tax
    buy_price         BIGINT NOT NULL,
    sell_price        BIGINT NOT NULL,
    current_high      BIGINT,
    current_low       BIGINT,
    confidence        TEXT NOT NULL DEFAULT 'medium'
                      CHECK (confidence IN ('low', 'medium', 'high')),
    model_id          BIGINT,
    PRIMARY KEY ("time", item_id, hour_offset, offset_pct)
) PARTITION BY RANGE ("time");

CREATE TABLE IF NOT EXISTS prediction_batches (
    "time"         TIMESTAMPTZ PRIMARY KEY,
    run_id         TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('primary', 'fallback')),
    rows_written   BIGINT NOT NULL,
    items          INTEGER NOT NULL,
    model_ids      BIGINT[] NOT NULL DEFAULT '{}',
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
