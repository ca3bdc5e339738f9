"""Logging for the app: every record written by the thread that makes it, no queue thread."""

from __future__ import annotations

from litestar.logging.config import LoggingConfig


def logging_config() -> LoggingConfig:
    """Litestar's default, except that records go straight to stderr.

    Litestar's default hands each record to a queue-listener thread; with one request-log
    record per request that thread woke on every request and took the GIL from the event loop
    in the middle of its socket and SQLite calls (py-spy under wrk: about a fifth of the
    serving process). A line on stderr is one short write, as uvicorn's own access log does.
    """
    return LoggingConfig(
        handlers={
            "console": {
                "class": "logging.StreamHandler",
                "level": "DEBUG",
                "formatter": "standard",
            },
            # Not used: declared so that Litestar does not add (and start) its queue listener.
            "queue_listener": {"class": "logging.NullHandler"},
        },
        loggers={"litestar": {"level": "INFO", "handlers": ["console"], "propagate": False}},
        root={"handlers": ["console"], "level": "INFO"},
    )
