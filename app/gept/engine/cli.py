"""`gept serve`: run the recommendation engine under uvicorn (uvloop + httptools).

Example:
    $ GEPT_ENGINE_API_KEY=... GEPT_DATABASE_URL=postgresql://... \\
        gept serve --host 127.0.0.1 --port 8000
"""

from __future__ import annotations

import typer

from gept.core.config import get_settings


def serve(
    host: str = typer.Option(None, "--host", help="Address to bind [GEPT_ENGINE_HOST]."),
    port: int = typer.Option(None, "--port", min=1, max=65535,
                             help="Port to bind [GEPT_ENGINE_PORT]."),
    workers: int = typer.Option(None, "--workers", min=1, max=32,
                                help="uvicorn worker processes [GEPT_ENGINE_WORKERS]."),
) -> None:
    """Serve the recommendation engine (FastAPI on uvicorn with uvloop and httptools).

    Refuses to start (exit 2) without a real API key. Uses uvicorn's fast loop and HTTP
    parser explicitly: the plain asyncio + h11 combination leaves Nagle's algorithm on and
    collapses under multiple workers.

    Example:
        $ gept serve --host 127.0.0.1 --port 8000 --workers 1
    """
    import uvicorn  # heavy; kept out of `gept --help`

    settings = get_settings()
    settings.api_key()  # raises ConfigError (exit 2) before any worker starts
    uvicorn.run(
        "gept.engine.main:create_app",
        factory=True,
        host=host or settings.engine_host,
        port=port or settings.engine_port,
        workers=workers or settings.engine_workers,
        loop="uvloop",
        http="httptools",
        # The engine writes its own access log line, with the request id.
        access_log=False,
        log_level=settings.log_level.lower(),
        server_header=False,
        proxy_headers=False,
    )
