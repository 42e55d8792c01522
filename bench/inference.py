"""Benchmark: one inference cycle over the simulator's 4,300 items, and its write vs raw COPY.

Runs its own PostgreSQL (gept.testing.pgserver). For each target grid (42 and 108
targets) it

1. seeds simulator history for its default catalogue (4,300 items, of which a 5-minute block
   lists the ~37 % that traded): the 330 five-minute blocks the features read,
   plus 7 days of hourly prices (the 7-day median feature);
2. registers and activates a CatBoost MultiLogloss model of production size (200 trees,
   depth 6; fitted on random data: prediction cost depends on the trees, not their quality);
3. times ``run_inference("primary")`` end to end: load the model (checksum-verified), read
   the history, compute features, predict, build rows, binary COPY + batch row, commit;
4. times a raw COPY of the same rows, already encoded, into a plain table with the same
   columns and primary key, through the same writer thread (the floor: what PostgreSQL
   needs just to store them), and reports ``raw COPY time / our write time`` (encode +
   COPY into the partitioned table + batch row + commit).

Each measurement is the best of ``REPEATS`` runs on fresh databases. The last line reads
``inference: <seconds> s for <priced> of 4300 items x <targets> targets; write <ratio>x raw
COPY``.

Example:
    $ .venv/bin/python bench/inference.py
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import psycopg
from psycopg.copy import QueuedLibpqWriter

from gept.core.clock import align, utcnow
from gept.core.config import get_settings
from gept.db import partitions
from gept.db.migrate import migrate
from gept.inference import batch as batch_io
from gept.inference.predictor import load_active, predict_history
from gept.inference.runner import run_inference
from gept.market.simulator import DEFAULT_ITEMS, SyntheticMarket
from gept.registry import artifacts, lifecycle
from gept.registry.features import FEATURE_NAMES, LOOKBACK_BLOCKS
from gept.registry.grid import TargetGrid
from gept.registry.history import latest_block, load_history
from gept.testing.history import seed_history
from gept.testing.pgserver import PgServer

ITEMS = DEFAULT_ITEMS
REPEATS = 3
TREES = 200
FIT_ROWS = 200


def seed(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    market = SyntheticMarket(items=ITEMS, seed=2026)
    stop = align(utcnow(), 300)
    start = stop - timedelta(minutes=5 * (LOOKBACK_BLOCKS + 2))
    seed_history(conn, market, start, stop, hourly=False)
    hourly = market.history_arrays(align(stop - timedelta(days=8), 3600),
                                   align(stop, 3600), 3600)
    n_t, n_i = hourly.avg_high_price.shape
    ts = np.repeat(hourly.timestamps, n_i)
    ids = np.tile(hourly.item_ids, n_t)
    hi, lo = hourly.avg_high_price.ravel(), hourly.avg_low_price.ravel()
    keep = ~(np.isnan(hi) | np.isnan(lo))
    buf = io.StringIO()
    for t, i, h, low in zip(ts[keep].tolist(), ids[keep].tolist(), hi[keep].tolist(),
                            lo[keep].tolist(), strict=True):
        buf.write(f"{i}\t{t}\t{int(h)}\t{int(low)}\n")
    with conn.transaction():
        conn.execute("CREATE TEMP TABLE h (item_id int, ts bigint, hi bigint, lo bigint)")
        with conn.cursor() as cur, cur.copy("COPY h FROM STDIN") as copy:
            copy.write(buf.getvalue())
        conn.execute('INSERT INTO prices_1h (item_id, "timestamp", avg_high_price, '
                     "high_price_volume, avg_low_price, low_price_volume) "
                     "SELECT item_id, to_timestamp(ts), hi, 10, lo, 10 FROM h "
                     "ON CONFLICT DO NOTHING")


def make_model(conn: psycopg.Connection[tuple[object, ...]], grid: TargetGrid,
               models_dir: Path) -> int:
    from catboost import CatBoostClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(FIT_ROWS, len(FEATURE_NAMES))).astype(np.float32)
    y = (rng.random((FIT_ROWS, grid.size)) < 0.3).astype(np.int8)
    model = CatBoostClassifier(loss_function="MultiLogloss", iterations=TREES, depth=6,
                               verbose=False, allow_writing_files=False)
    model.fit(x, y)
    path, digest = artifacts.save(models_dir, f"bench_{grid.size}", "global", model, {})
    model_id = lifecycle.register(
        conn, scope="global", run_id=f"bench_{grid.size}", model_path=path,
        artifact_sha256=digest, windows_hours=grid.windows_hours, offsets_pct=grid.offsets,
        feature_names=FEATURE_NAMES, validation_passed=True, mean_auc=0.6,
        metrics={"trained_targets": list(range(grid.size)),
                 "fallback_rates": [0.3] * grid.size,
                 "target_auc": [0.7] * grid.size})
    lifecycle.promote_initial(conn, model_id, models_dir=models_dir)
    return model_id


def raw_copy_seconds(dsn: str, models_dir: Path) -> tuple[float, int]:
    """COPY the batch's rows, pre-encoded, into a plain table with the same key."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        block = latest_block(conn)
        assert block is not None
        models = load_active(conn, models_dir)
        batch = predict_history(load_history(conn, end=block, blocks=LOOKBACK_BLOCKS),
                                models, block)
        payload = [batch.encode(conn, lo, min(len(batch), lo + batch_io.CHUNK_ROWS))
                   for lo in range(0, len(batch), batch_io.CHUNK_ROWS)]
        conn.execute("CREATE TABLE raw_predictions (LIKE predictions INCLUDING DEFAULTS "
                     "INCLUDING CONSTRAINTS)")
        conn.execute('ALTER TABLE raw_predictions ADD PRIMARY KEY ("time", item_id, '
                     "hour_offset, offset_pct)")
        cols = ", ".join(f'"{c}"' for c in batch_io.COLUMNS)
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur, cur.copy(
                f"COPY raw_predictions ({cols}) FROM STDIN (FORMAT BINARY)",
                writer=QueuedLibpqWriter(cur)) as copy:
            for chunk in payload:
                copy.write(chunk)
        return time.perf_counter() - started, len(batch)


def main() -> int:
    with PgServer.start() as server, tempfile.TemporaryDirectory() as tmp:
        os.environ["GEPT_STATE_DIR"] = str(Path(tmp) / "state")
        os.environ["GEPT_PREDICTIONS_RETENTION_DAYS"] = "0"
        base = server.create_database("bench_history")
        t0 = time.perf_counter()
        with psycopg.connect(base, autocommit=True) as conn:
            migrate(conn)
            seed(conn)
        print(f"seeded {ITEMS} items in {time.perf_counter() - t0:.1f} s", flush=True)
        lines = []
        for grid in (TargetGrid.named("default"), TargetGrid.named("production")):
            models_dir = Path(tmp) / f"models{grid.size}"
            template = f"bench_t{grid.size}"
            partitions.forget_cache()
            dsn = server.create_database(template, template="bench_history")
            t0 = time.perf_counter()
            with psycopg.connect(dsn, autocommit=True) as conn:
                make_model(conn, grid, models_dir)
            print(f"{grid.size} targets: model of {TREES} trees fitted in "
                  f"{time.perf_counter() - t0:.1f} s", flush=True)
            cycles, writes, raws, priced = [], [], [], 0
            for rep in range(REPEATS):
                partitions.forget_cache()
                run_dsn = server.create_database(f"r{grid.size}_{rep}", template=template)
                os.environ["GEPT_DATABASE_URL"] = run_dsn
                os.environ["GEPT_MODELS_DIR"] = str(models_dir)
                get_settings.cache_clear()
                started = time.perf_counter()
                result = run_inference("primary")
                cycles.append(time.perf_counter() - started)
                assert result.status == "completed", result
                assert result.rows_written > 0, result
                priced = result.items_predicted
                writes.append(result.timings["write"] + result.timings["commit"])
                raw, rows = raw_copy_seconds(
                    server.create_database(f"raw{grid.size}_{rep}", template=template),
                    models_dir)
                raws.append(raw)
                print(f"  run {rep + 1}: cycle {cycles[-1]:.2f} s {result.timings}; "
                      f"{result.rows_written} rows ({result.items_predicted} items priced); "
                      f"raw COPY {raw:.2f} s for {rows} rows", flush=True)
            best_cycle = min(cycles)
            ratio = min(raws) / min(writes)
            lines.append(f"inference: {best_cycle:.2f} s for {priced} of {ITEMS} items x "
                         f"{grid.size} targets; write {ratio:.2f}x raw COPY")
        for line in lines:
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
