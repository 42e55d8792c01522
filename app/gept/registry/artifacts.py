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
from pathlib import Path
from typing import Any

from gept.core.errors import IntegrityError

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


def read_verified(models_dir: Path, model_path: str, expected_sha256: str) -> bytes:
    """The artifact's bytes, after checking them against the recorded sha256.

    Raises:
        IntegrityError: when the file is missing or its checksum differs (tampered or
            corrupted); the message names the file and both checksums.
    """
    path = (models_dir / model_path).resolve()
    if not path.is_relative_to(models_dir.resolve()):
        raise IntegrityError(f"model path {model_path!r} escapes the models directory",
                             path=model_path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
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


def load_verified(models_dir: Path, model_path: str, expected_sha256: str) -> Any:
    """A CatBoost model built from checksum-verified bytes.

    Raises:
        IntegrityError: see :func:`read_verified`.
    """
    from catboost import CatBoostClassifier

    data = read_verified(models_dir, model_path, expected_sha256)
    model = CatBoostClassifier()
    model.load_model(blob=data)
    return model
