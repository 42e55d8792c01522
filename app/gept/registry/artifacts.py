"""Model artifacts on disk: where they live, their checksums, and verified loading.

Layout under ``GEPT_MODELS_DIR``: ``<run_id>/<scope dir>/model.cbm`` plus ``meta.json``
(for people). The registry records the path relative to the models directory and the
sha256 of ``model.cbm``; nothing is loaded unless the bytes on disk hash to that value.
The bytes are read once, hashed, and the model is built from those same bytes, so a file
swapped between the check and the load cannot slip through.

Example:
    >>> model = load_verified(models_dir, "20260101_120000/global/model.cbm",
    ...                       expected_sha256)                   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import psycopg

from gept.core.errors import IntegrityError

log = logging.getLogger(__name__)

MODEL_FILE = "model.cbm"
META_FILE = "meta.json"


def scope_dir(scope: str) -> str:
    """A directory name for a scope: ``global``, ``group_<name>``, ``item_<id>``."""
    return scope.replace(":", "_").replace("/", "_")


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save(models_dir: Path, run_id: str, scope: str, model: Any,
         meta: dict[str, Any]) -> tuple[str, str]:
    """Write a CatBoost model and its meta.json; return (relative path, sha256)."""
    folder = models_dir / run_id / scope_dir(scope)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MODEL_FILE
    tmp = folder / (MODEL_FILE + ".tmp")
    model.save_model(str(tmp), format="cbm")
    tmp.replace(path)  # atomic: a reader never sees a half-written model
    digest = sha256_file(path)
    (folder / META_FILE).write_text(json.dumps({**meta, "artifact_sha256": digest},
                                               indent=2, default=str) + "\n")
    return str(path.relative_to(models_dir)), digest


def publish(conn: psycopg.Connection[Any], models_dir: Path, model_path: str,
            sha256: str) -> None:
    """Store a verified artifact in ``model_artifacts`` so other hosts can load it.

    Ampere's fallback inference must be able to load the model Hydra trained; the bytes go
    through the database both hosts already share, instead of a separate file sync.
    """
    data = read_verified(models_dir, model_path, sha256)
    conn.execute("INSERT INTO model_artifacts (sha256, bytes, size_bytes) VALUES (%s, %s, %s) "
                 "ON CONFLICT (sha256) DO NOTHING", (sha256, data, len(data)))


def _from_database(conn: psycopg.Connection[Any], path: Path, expected_sha256: str) -> bytes:
    row = conn.execute("SELECT bytes FROM model_artifacts WHERE sha256 = %s",
                       (expected_sha256,)).fetchone()
    if row is None:
        raise IntegrityError(f"model artifact {path} is missing here and the database has "
                             f"no copy with sha256 {expected_sha256}", path=str(path))
    data = bytes(row[0])
    actual = sha256_bytes(data)
    if actual != expected_sha256:
        raise IntegrityError(f"the database copy of {path} failed its checksum: recorded "
                             f"{expected_sha256}, stored bytes hash to {actual}",
                             path=str(path), expected_sha256=expected_sha256,
                             actual_sha256=actual)
    try:  # cache locally; a read-only models dir only costs a fetch next time
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        log.warning("could not cache model artifact at %s: %s", path, exc)
    return data


def read_verified(models_dir: Path, model_path: str, expected_sha256: str,
                  conn: psycopg.Connection[Any] | None = None) -> bytes:
    """The artifact's bytes, after checking them against the recorded sha256.

    A file that is missing locally is fetched from ``model_artifacts`` when ``conn`` is
    given (and cached). A local file that exists but fails its checksum is never replaced
    silently: it is refused.

    Raises:
        IntegrityError: when the file is missing (and not in the database) or its checksum
            differs (tampered or corrupted); the message names the file and both checksums.
    """
    path = (models_dir / model_path).resolve()
    if not path.is_relative_to(models_dir.resolve()):
        raise IntegrityError(f"model path {model_path!r} escapes the models directory",
                             path=model_path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        if conn is not None:
            return _from_database(conn, path, expected_sha256)
        raise IntegrityError(f"model artifact {path} is missing; it was recorded with "
                             f"sha256 {expected_sha256}", path=str(path)) from exc
    actual = sha256_bytes(data)
    if actual != expected_sha256:
        raise IntegrityError(
            f"model artifact {path} failed its checksum: recorded sha256 {expected_sha256}, "
            f"file has {actual}. The file was modified or corrupted; refusing to load it "
            "(restore it from the training host or retrain).",
            path=str(path), expected_sha256=expected_sha256, actual_sha256=actual)
    return data


def load_verified(models_dir: Path, model_path: str, expected_sha256: str,
                  conn: psycopg.Connection[Any] | None = None) -> Any:
    """A CatBoost model built from checksum-verified bytes.

    Raises:
        IntegrityError: see :func:`read_verified`.
    """
    from catboost import CatBoostClassifier

    data = read_verified(models_dir, model_path, expected_sha256, conn)
    model = CatBoostClassifier()
    model.load_model(blob=data)
    return model
