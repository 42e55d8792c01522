"""The engine's background loops (the predictions refresher, the price-drop monitor).

Example:
    >>> import asyncio
    >>> async def demo() -> bool:
    ...     task = asyncio.create_task(asyncio.sleep(60))
    ...     await stopped(task)
    ...     return task.cancelled()
    >>> asyncio.run(demo())
    True
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def stopped(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (if any) and wait until it has ended; its cancellation is expected."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
