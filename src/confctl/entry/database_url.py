"""CONFCTL_DATABASE_URL as operators write it (libpq's `postgresql://` or `postgres://`, or SQLAlchemy's
`postgresql+asyncpg://`), normalised to the one driver confctl runs on: asyncpg.

SQLAlchemy hands every query parameter of the URL to `asyncpg.connect()` as a keyword argument, so a libpq
parameter would fail there with a TypeError on the first connection (and confctl's own asyncpg pool would drop it
silently): `sslmode` is translated to asyncpg's `ssl`, which takes the same modes (and then reads certificates
from PGSSLROOTCERT, PGSSLCERT, PGSSLKEY, PGSSLCRL or ~/.postgresql/, as libpq does); any other parameter asyncpg
cannot take is refused here, in one line, instead of at the first connection.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

DRIVER = "postgresql+asyncpg"
SCHEMES = frozenset({"postgresql", "postgres", DRIVER})
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# Query parameters that reach asyncpg.connect() intact as strings (SQLAlchemy's dialect turns host/port into
# asyncpg's host lists, and prepared_statement_cache_size is its own).
PASSED = frozenset({"host", "port", "user", "password", "passfile", "service", "servicefile", "ssl",
                    "target_session_attrs", "krbsrvname", "gsslib", "prepared_statement_cache_size"})
HINTS = {
    "sslrootcert": "put the CA file's path in PGSSLROOTCERT instead (asyncpg reads it there)",
    "sslcert": "put the client certificate's path in PGSSLCERT instead (asyncpg reads it there)",
    "sslkey": "put the client key's path in PGSSLKEY instead (asyncpg reads it there)",
    "sslcrl": "put the CRL file's path in PGSSLCRL instead (asyncpg reads it there)",
    "connect_timeout": "confctl bounds every connect by CONFCTL_DB_TIMEOUT_S",
    "dbname": "put the database name in the URL's path",
}


def normalise(value: str) -> str:
    """`value` as a `postgresql+asyncpg://` URL; ValueError (one line, without the URL: it may hold a password)
    when it is not a PostgreSQL URL or has a parameter asyncpg cannot take."""
    try:
        url = make_url(value.strip())
    except (ArgumentError, ValueError):
        raise ValueError("not a database URL: write postgresql://user:password@host:5432/database") from None
    scheme = url.drivername.lower()
    if scheme not in SCHEMES:
        backend, _, driver = scheme.partition("+")
        what = f"the driver {driver}" if backend in ("postgresql", "postgres") else f"the scheme {scheme}://"
        raise ValueError(f"{what} is not supported: confctl runs on PostgreSQL through asyncpg; write "
                         "postgresql://user:password@host:5432/database (postgres:// and postgresql+asyncpg:// "
                         "are accepted too)")
    return url.set(drivername=DRIVER, query=_query(url)).render_as_string(hide_password=False)


def _query(url: URL) -> dict[str, str | tuple[str, ...]]:
    query = dict(url.query)
    if "sslmode" in query:
        if "ssl" in query:
            raise ValueError("give sslmode or ssl, not both")
        query["ssl"] = query.pop("sslmode")
        name = "sslmode"
    else:
        name = "ssl"
    if "ssl" in query and query["ssl"] not in SSL_MODES:
        raise ValueError(f"{name} must be one of {', '.join(SSL_MODES)} (once)")
    for key in query:
        if key not in PASSED:
            hint = HINTS.get(key, "asyncpg, which confctl connects with, has no such connection parameter")
            raise ValueError(f"the query parameter {key} is not supported: {hint}")
    return query
