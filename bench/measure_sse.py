"""SSE append-to-delivery: how long after a callback is stored its event reaches each of 200 subscribers.

A fresh conference is created by a signed participant-join; bench/sse_probe.py (a process of its own) opens
the subscribers on `GET /v1/conferences/{id}/stream?after={version}`; then `events` callbacks (hold / unhold /
mute / unmute, SequenceNumber 2, 3, …) are posted one by one, `pace_s` apart, on a keep-alive connection.
For each event and subscriber: arrival − the POST's answer (the fact is durable: "append to delivery") and
arrival − the POST's send (the append included). Both clocks are CLOCK_MONOTONIC, shared by all processes.
"""

from __future__ import annotations

import http.client
import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import signed
from measure_hold import percentile
from stack import API_KEY, HOST, Proc

PROBE = Path(__file__).resolve().parent / "sse_probe.py"


def _lines(stream: Any, out: queue.Queue[str]) -> None:
    for line in stream:
        out.put(line.rstrip("\n"))
    out.put("")  # end of output


def _next_line(lines: queue.Queue[str], timeout_s: float) -> str | None:
    try:
        return lines.get(timeout=timeout_s)
    except queue.Empty:
        return None


def _post(conn: http.client.HTTPConnection, public_url: str, form: dict[str, str]) -> int:
    """POST a signed callback; its status, or 0 when the connection failed (it is then reopened)."""
    body = signed.urlencode(form)
    try:
        conn.request("POST", signed.PATH, body, {"Content-Type": "application/x-www-form-urlencoded",
                                                  "X-Twilio-Signature": signed.sign(public_url + signed.PATH, form)})
        answer = conn.getresponse()
        answer.read()
    except (OSError, http.client.HTTPException):
        conn.close()  # the next request connects again
        return 0
    if answer.getheader("connection", "").lower() == "close":
        conn.close()
    return answer.status


def measure(confctl: Proc, subscribers: int = 200, events: int = 40, pace_s: float = 0.1) -> dict[str, Any]:
    """p50/p99 (ms) from answer and from send to each subscriber's arrival, and what was lost."""
    assert confctl.port is not None
    conf = signed.Conf.of(signed.next_set_id(), 0)
    conn = http.client.HTTPConnection(HOST, confctl.port, timeout=30)
    status = _post(conn, confctl.url, signed.cycle_params(conf, 1))
    if status != 204:
        raise RuntimeError(f"creating the conference: HTTP {status}")
    conn.request("GET", f"/v1/conferences/{conf.name}", headers={"Authorization": f"Bearer {API_KEY}"})
    answer = conn.getresponse()
    document = json.loads(answer.read())
    if answer.status != 200:
        raise RuntimeError(f"reading the conference: HTTP {answer.status} {document}")
    url = f"{confctl.url}/v1/conferences/{conf.name}/stream?after={document['version']}"
    probe = subprocess.Popen([sys.executable, str(PROBE), "--url", url, "--key", API_KEY, "--subscribers",
                              str(subscribers), "--expect", str(events), "--max-s", str(120 + events * pace_s)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(probe.stdout, lines), daemon=True).start()
    sent: dict[int, tuple[float, float]] = {}
    failures = 0
    try:
        if _next_line(lines, 90) != "ready":
            raise RuntimeError("the SSE probe did not get ready")
        for seq in range(2, 2 + events):
            t_send = time.monotonic()
            if _post(conn, confctl.url, signed.cycle_params(conf, seq)) != 204:
                failures += 1
                continue
            sent[seq] = (t_send, time.monotonic())
            time.sleep(pace_s)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _next_line(lines, 0.5) != "complete":
            pass
        assert probe.stdin is not None
        probe.stdin.write("stop\n")
        probe.stdin.flush()
        report = None
        for _ in range(100):  # bounded: the JSON follows within a few lines
            line = _next_line(lines, 30)
            if not line:
                break
            if line.startswith("{"):
                report = json.loads(line)
                break
        if report is None:
            raise RuntimeError("the SSE probe printed no report")
    finally:
        conn.close()
        if probe.poll() is None:
            probe.kill()
        probe.wait(10)
    from_answer: list[float] = []
    from_send: list[float] = []
    for seq_text, arrivals in report["arrivals"].items():
        seq = int(seq_text)
        if seq not in sent:
            continue
        t_send, t_answer = sent[seq]
        from_answer += [(t - t_answer) * 1000 for t in arrivals]
        from_send += [(t - t_send) * 1000 for t in arrivals]
    if not from_answer:
        raise RuntimeError(f"no event reached any subscriber ({report['errors'][:3]})")
    return {
        "subscribers": subscribers, "events": events, "deliveries": len(from_answer),
        "expected": subscribers * len(sent), "post_failures": failures, "errors": report["errors"][:3],
        "answer_p50": percentile(from_answer, 50), "answer_p99": percentile(from_answer, 99),
        "send_p50": percentile(from_send, 50), "send_p99": percentile(from_send, 99),
    }
