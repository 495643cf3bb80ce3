"""structlog set-up: key=value lines for people, JSON lines when CONFCTL_LOG_JSON is set."""

from __future__ import annotations

import logging
import os

import structlog


def configure_logging() -> None:
    """Configure structlog and the stdlib root logger once per process."""
    level = getattr(logging, os.environ.get("CONFCTL_LOG_LEVEL", "INFO").upper(), logging.INFO)
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if os.environ.get("CONFCTL_LOG_JSON")
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level, format="%(message)s")
