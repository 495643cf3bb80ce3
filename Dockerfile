# syntax=docker/dockerfile:1
# confctl's image: the wheel and its dependencies built in a first stage, installed into a slim Python in the
# second, with no compiler, no build tool and no source tree. Checked by tests/deploy/test_dockerfile.py
# (hadolint and the rules below); the wheel build is the one tests/packaging/test_wheel.py runs and tests.
#
#   docker build -t confctl .
#   docker run -e CONFCTL_DATABASE_URL=postgresql+asyncpg://user:pass@db/confctl confctl migrate
#   docker run -p 8000:8000 -e CONFCTL_DATABASE_URL=... -e CONFCTL_PUBLIC_URL=https://... confctl

# The build stage: the full image has compilers, for any dependency without a wheel for this platform.
FROM python:3.11 AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
# pyproject.toml's [build-system] requires, installed so that the wheel builds without build isolation.
RUN pip install --no-cache-dir "setuptools>=69" "wheel>=0.43"
# What a wheel is built from: the same three as tests/packaging/test_wheel.py (SOURCES).
COPY pyproject.toml README.md ./
COPY src ./src
# First confctl's wheel, by the wheel test's own command (keep the two identical: `pip wheel --no-deps
# --no-build-isolation --wheel-dir DIR SRC`); then every dependency as a wheel too (downloaded, or compiled
# here), so that the final stage installs offline.
RUN pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels . \
    && pip wheel --no-cache-dir --wheel-dir /wheels /wheels/confctl-*.whl

# The final stage: Python, confctl's wheel and its dependencies, nothing else.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8000 \
    CONFCTL_DATA_DIR=/var/lib/confctl
# The wheels are mounted for this one step, not copied: they add nothing to the image's layers. Like the wheel
# test, this installs the wheel file itself (its dependencies from the same folder, no index).
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links /wheels /wheels/confctl-*.whl
# A user of its own, numeric so that runAsNonRoot can check it (the embedded PostgreSQL refuses root, too).
RUN groupadd --system --gid 10001 confctl \
    && useradd --system --uid 10001 --gid confctl --home-dir /var/lib/confctl --create-home confctl
USER 10001:10001
WORKDIR /var/lib/confctl
EXPOSE 8000
# /readyz: the database answers and is migrated. Python's urllib, since the slim image has no curl; PORT is
# the port `confctl serve` listens on (set PORT rather than --port, so that this check follows it).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/readyz', timeout=2)"]
ENTRYPOINT ["confctl"]
CMD ["serve"]
