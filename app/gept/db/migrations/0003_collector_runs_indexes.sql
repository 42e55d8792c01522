-- Indexes for the status page and the ledger-derived metrics (gept collect status-page).
-- "Last success per collector" reads only successful runs, newest first.
CREATE INDEX IF NOT EXISTS idx_collector_runs_success
    ON collector_runs (collector, finished_at DESC) WHERE status = 'ok';
-- "Runs, failures and rows of the last 24 hours" scans a time range across collectors.
CREATE INDEX IF NOT EXISTS idx_collector_runs_started ON collector_runs (started_at);
