"""SSE subscribers for the benchmark, in a process of their own (so their parsing does not slow the sender).

Opens `--subscribers` streams on `--url` with httpx (`Authorization: Bearer KEY`), prints `ready` once every
stream has sent its first message (the `retry:` hint), then records, for every `data:` line, the
time.monotonic() of its arrival (system-wide on Linux, so comparable with the sender's clock) under the
Twilio SequenceNumber of the event. Once every subscriber has `--expect` events it prints `complete`;
it ends when a line arrives on stdin, or after `--max-s`, and then prints one JSON object:
`{"arrivals": {seq: [t, ...]}, "errors": [...]}`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from collections import defaultdict

import httpx


async def run(url: str, key: str, subscribers: int, expect: int, max_s: float) -> dict[str, object]:
    arrivals: dict[int, list[float]] = defaultdict(list)
    errors: list[str] = []
    connected = 0
    all_connected = asyncio.Event()
    counts = [0] * subscribers
    done = asyncio.Event()
    limits = httpx.Limits(max_connections=subscribers + 5, max_keepalive_connections=0)
    timeout = httpx.Timeout(None, connect=30.0)

    async def subscriber(n: int, client: httpx.AsyncClient) -> None:
        nonlocal connected
        first = True
        try:
            async with client.stream("GET", url, headers={"Authorization": f"Bearer {key}"}) as response:
                if response.status_code != 200:
                    errors.append(f"subscriber {n}: HTTP {response.status_code}")
                    return
                async for line in response.aiter_lines():
                    if first:
                        first = False
                        connected += 1
                        if connected == subscribers:
                            all_connected.set()
                    if not line.startswith("data:"):
                        continue
                    now = time.monotonic()
                    event = json.loads(line[5:])
                    seq = (event.get("data") or {}).get("sequence")
                    if isinstance(seq, int):
                        arrivals[seq].append(now)
                        counts[n] += 1
                        if all(c >= expect for c in counts):
                            done.set()
        except (httpx.HTTPError, OSError, ValueError) as exc:
            errors.append(f"subscriber {n}: {type(exc).__name__}: {exc}")

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def stdin_line() -> None:  # a daemon thread: never keeps the process alive
        sys.stdin.readline()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=stdin_line, daemon=True).start()

    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        tasks = [asyncio.create_task(subscriber(n, client)) for n in range(subscribers)]
        try:
            await asyncio.wait_for(all_connected.wait(), 60)
            print("ready", flush=True)
        except TimeoutError:
            errors.append(f"only {connected} of {subscribers} subscribers connected within 60 s")
            print("ready", flush=True)
        deadline = loop.time() + max_s
        waiting = {asyncio.create_task(done.wait()), asyncio.create_task(stop.wait())}
        await asyncio.wait(waiting, timeout=max_s, return_when=asyncio.FIRST_COMPLETED)
        if done.is_set():
            print("complete", flush=True)
            # The sender stops us once it has read "complete" (or gave up waiting for it).
            await asyncio.wait([t for t in waiting if not t.done()], timeout=max(0.0, deadline - loop.time()))
        if not stop.is_set() and not done.is_set():
            errors.append(f"stopped after {max_s:.0f} s")
        for task in [*tasks, *waiting]:
            task.cancel()
        await asyncio.gather(*tasks, *waiting, return_exceptions=True)
    return {"arrivals": {str(k): v for k, v in arrivals.items()}, "errors": errors[:20]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--max-s", type=float, default=120.0)
    args = parser.parse_args()
    result = asyncio.run(run(args.url, args.key, args.subscribers, args.expect, args.max_s))
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
