"""Training configuration: environment (``GEPT_TRAIN_*``, ``GEPT_TASK_TYPE``) + CLI flags.

Example:
    $ GEPT_TRAIN_MIN_AUC=0.6 GEPT_TRAIN_GRID=production gept train --items 20
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gept.registry.grid import TargetGrid
from gept.training.evaluate import Gate


class TrainingSettings(BaseSettings):
    """Defaults for ``gept train``; field ``x`` is read from ``GEPT_TRAIN_X``."""

    model_config = SettingsConfigDict(env_prefix="GEPT_TRAIN_", extra="ignore")

    items: int = Field(20, description="Items to train on (the most traded).")
    days: int = Field(14, description="Days of history to train on.")
    iterations: int = Field(100, description="CatBoost iterations.")
    depth: int = Field(6, description="CatBoost tree depth.")
    learning_rate: float = Field(0.1, description="CatBoost learning rate.")
    # Neighbouring 5-minute samples are near-copies; one every 15 minutes is enough.
    stride: int = Field(3, description="Take one sample every `stride` 5-minute blocks.")
    grid: str = Field("default", description="Target grid: default (42 targets) or "
                                             "production (108).")
    windows: str | None = Field(None, description='Overrides the grid\'s windows, e.g. "1,2,4".')
    offsets: str | None = Field(None, description="Overrides the grid's offsets, e.g. "
                                                  '"0.0125,0.02".')
    min_auc: float = Field(0.55, description="Promotion gate: the lowest validation AUC.")
    min_scored_fraction: float = Field(0.5, description="Promotion gate: the share of targets "
                                                        "that must be scored.")
    min_positives: int = Field(20, description="A target needs this many positives and "
                                               "negatives.")
    train_fraction: float = Field(0.70, description="Share of time used for training.")
    val_fraction: float = Field(0.15, description="Share of time used for validation.")
    thread_count: int = Field(-1, description="CatBoost threads (-1: all cores).")
    seed: int = Field(42, description="Random seed.")


@dataclass(frozen=True)
class TrainConfig:
    """One training run's resolved parameters."""

    items: int
    days: int
    iterations: int
    depth: int
    learning_rate: float
    stride: int
    grid: TargetGrid
    gate: Gate
    min_positives: int
    train_fraction: float
    val_fraction: float
    task_type: str
    thread_count: int
    seed: int
    scope: str = "global"            # global (one grouped model) or item (one per item)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (stored in training_jobs.config)."""
        return {"items": self.items, "days": self.days, "iterations": self.iterations,
                "depth": self.depth, "learning_rate": self.learning_rate,
                "stride": self.stride, "windows_hours": list(self.grid.windows_hours),
                "offsets": [str(o) for o in self.grid.offsets], "targets": self.grid.size,
                "min_auc": self.gate.min_auc,
                "min_scored_fraction": self.gate.min_scored_fraction,
                "min_positives": self.min_positives, "task_type": self.task_type,
                "scope": self.scope, "seed": self.seed}


def resolve(settings: TrainingSettings, *, task_type: str, items: int | None = None,
            days: int | None = None, iterations: int | None = None,
            depth: int | None = None, grid: str | None = None, scope: str = "global",
            min_auc: float | None = None) -> TrainConfig:
    """Flags win over the environment, which wins over defaults."""
    from gept.core.errors import InvalidInput

    if settings.windows or settings.offsets:
        target_grid = TargetGrid.parse(settings.windows or "1,2,4,8,12,24,48",
                                       settings.offsets or "0.0125,0.015,0.0175,0.02,0.0225,0.025")
    else:
        target_grid = TargetGrid.named(grid or settings.grid)
    if scope not in ("global", "item"):
        raise InvalidInput("scope must be 'global' or 'item'", field="scope", value=scope)
    if task_type not in ("CPU", "GPU"):
        raise InvalidInput("task type must be CPU or GPU", field="task_type", value=task_type)
    cfg = TrainConfig(
        items=items or settings.items, days=days or settings.days,
        iterations=iterations or settings.iterations, depth=depth or settings.depth,
        learning_rate=settings.learning_rate, stride=settings.stride, grid=target_grid,
        gate=Gate(min_auc if min_auc is not None else settings.min_auc,
                  settings.min_scored_fraction),
        min_positives=settings.min_positives, train_fraction=settings.train_fraction,
        val_fraction=settings.val_fraction, task_type=task_type,
        thread_count=settings.thread_count, seed=settings.seed, scope=scope)
    for name in ("items", "days", "iterations", "depth", "stride"):
        if getattr(cfg, name) < 1:
            raise InvalidInput(f"{name} must be >= 1", field=name)
    return cfg
