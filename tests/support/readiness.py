"""Waiting for a real confctl process to answer `/readyz`."""

from __future__ import annotations

import time

import httpx


def readiness(port: int, deadline: float) -> object:
    """What /readyz on 127.0.0.1:`port` says once the server answers (None if it never did before `deadline`)."""
    while time.monotonic() < deadline:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).json()
        except httpx.TransportError:
            time.sleep(0.2)
    return None
