-- Training jobs keep the evaluation of the models they trained (AUC per target, Brier,
-- reliability buckets, the gate verdict), including models that failed the gate and were
-- therefore never registered.
ALTER TABLE training_jobs ADD COLUMN IF NOT EXISTS metrics JSONB NOT NULL DEFAULT '{}'::jsonb;
