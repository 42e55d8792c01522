-- Model artifacts, content-addressed by sha256, so every host that runs inference (Hydra's
-- primary AND Ampere's fallback) can load the ACTIVE model without a file sync: the bytes
-- travel through the same PostgreSQL the predictions go to, and are verified on load.
CREATE TABLE IF NOT EXISTS model_artifacts (
    sha256      TEXT PRIMARY KEY CHECK (length(sha256) = 64),
    bytes       BYTEA NOT NULL,
    size_bytes  BIGINT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
