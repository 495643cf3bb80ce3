"""Wait music, hold music and announcements: what Twilio fetches to play into a conference, with which method,
and what becomes of the leg or the announcement when the fetch fails or returns nothing playable."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from confctl.simulator import Simulator
from tests.simulator.conftest import HOOKS, Hook, Recorder, api, dial, inbound, truth

EVENTS = "start end join leave mute hold modify announcement"
WAIT = "http://music.test/wait.mp3"


def room_twiml(**attrs: str) -> Callable[[dict[str, str]], str]:
    """The voice TwiML: the caller into `room-{CallSid}` with every event subscribed and these attributes."""
    extra = "".join(f' {name}="{value}"' for name, value in attrs.items())
    return lambda params: (
        '<Response><Dial><Conference participantLabel="customer" endConferenceOnExit="true" '
        f'statusCallback="{HOOKS}/twilio/conference-status" statusCallbackEvent="{EVENTS}"{extra}>'
        f"room-{params['CallSid']}</Conference></Dial></Response>"
    )


def fetches(recorder: Recorder, path: str) -> list[Hook]:
    return [hook for hook in recorder.hooks if hook.path == path]


def log_of(sim: Simulator, kind: str) -> list[dict[str, object]]:
    return [entry for entry in sim.runtime.delivery.log if entry["kind"] == kind]


@pytest.mark.parametrize(("attrs", "method"), [({"waitMethod": "GET"}, "GET"), ({}, "POST")])
async def test_wait_url_is_fetched_with_its_method(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder, attrs: dict[str, str], method: str
) -> None:
    """A caller waiting alone makes Twilio fetch its waitUrl with waitMethod (POST when not given); it stays in."""
    recorder.voice = room_twiml(waitUrl=WAIT, **attrs)
    call_sid, conference = await inbound(client, sim)
    (fetch,) = fetches(recorder, "/wait.mp3")
    assert fetch.method == method
    assert fetch.params["CallSid"] == call_sid
    assert fetch.signature_valid
    (entry,) = log_of(sim, "wait")
    assert (entry["method"], entry["status"]) == (method, 200)
    assert [p["label"] for p in (await truth(client, conference))["participants"]] == ["customer"]


async def test_create_participant_wait_method(client: httpx.AsyncClient, sim: Simulator, recorder: Recorder) -> None:
    """CreateParticipant's WaitUrl is fetched with its WaitMethod once the leg waits; a starting leg fetches none."""
    await dial(client, "api-room", "client:a", "a", WaitUrl="http://music.test/a.mp3", WaitMethod="GET")
    await sim.settle()
    assert [hook.method for hook in fetches(recorder, "/a.mp3")] == ["GET"]
    await dial(client, "api-room", "client:b", "b", WaitUrl="http://music.test/b.mp3")
    await sim.settle()
    assert fetches(recorder, "/b.mp3") == []  # b's join starts the conference: b never waits
    assert (await truth(client, "api-room"))["status"] == "in-progress"


async def test_without_wait_url_nothing_is_fetched(client: httpx.AsyncClient, sim: Simulator) -> None:
    """No waitUrl (Twilio's own music) or an empty one (silence): no fetch, and the caller waits in the room."""
    _, conference = await inbound(client, sim)
    await dial(client, "silent-room", "client:a", "a", WaitUrl="")
    await sim.settle()
    assert log_of(sim, "wait") == []
    assert len((await truth(client, conference))["participants"]) == 1


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ((404, "text/html", "<html>not found</html>"), 11200),
        ((200, "application/json", "{}"), 12300),
        ((200, "text/xml", "<Response><Dial>+15550001</Dial></Response>"), 13238),
        ((200, "text/plain", "just words"), 12300),
    ],
)
async def test_a_failed_wait_url_takes_the_caller_out(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder, answer: tuple[int, str, str], code: int
) -> None:
    """A waitUrl that fails or is not playable: the conference is not established; the caller's join is
    followed by its leave (participant_add_failed), its end-on-exit ends the room, and its call goes on after
    the Dial (nothing there: it completes). Twilio's error code goes to the alerts."""
    recorder.media["/bad"] = answer
    recorder.voice = room_twiml(waitUrl="http://music.test/bad", waitMethod="GET")
    call_sid, _ = await inbound(client, sim)
    events = recorder.conference_events()
    assert [e["StatusCallbackEvent"] for e in events] == ["participant-join", "participant-leave", "conference-end"]
    leave = events[1]
    assert (leave["ReasonParticipantLeft"], leave["ParticipantCallStatus"]) == ("participant_add_failed", "in-progress")
    assert (await client.get(api(f"/Calls/{call_sid}.json"))).json()["status"] == "completed"
    assert (await truth(client, f"room-{call_sid}"))["status"] == "completed"
    assert [(a.error_code, a.call_sid) for a in sim.world.state.alerts] == [(code, call_sid)]


async def test_the_call_goes_on_after_a_failed_wait(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """After a failed waitUrl the verbs after `<Dial>` run (the page's advice against being disconnected)."""
    recorder.media["/bad"] = (500, "text/plain", "")
    recorder.voice = lambda params: (
        '<Response><Dial><Conference waitUrl="http://music.test/bad">lonely</Conference></Dial>'
        '<Pause length="30"/></Response>'
    )
    call_sid = (await client.post("/simulator/calls", json={"from": "+1555", "to": "+1666"})).json()["call_sid"]
    await sim.settle()
    call = (await client.get(api(f"/Calls/{call_sid}.json"))).json()
    assert call["status"] == "completed"
    assert int(call["duration"]) >= 30  # the Pause after the Dial ran
    assert (await truth(client, "lonely"))["participants"] == []


async def test_wait_twiml_may_play_say_pause_and_redirect(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """A wait application answering TwiML with Play, Say, Pause and Redirect only is playable."""
    recorder.media["/app"] = (200, "text/xml; charset=utf-8", (
        "<Response><Say>Please wait</Say><Play>http://music.test/x.mp3</Play><Pause length=\"2\"/>"
        "<Redirect/></Response>"))
    recorder.voice = room_twiml(waitUrl="http://music.test/app")
    _, conference = await inbound(client, sim)
    assert [hook.method for hook in fetches(recorder, "/app")] == ["POST"]
    assert len((await truth(client, conference))["participants"]) == 1
    assert list(sim.world.state.alerts) == []


@pytest.mark.parametrize(("form", "method"), [({"HoldMethod": "POST"}, "POST"), ({}, "GET")])
async def test_hold_url_is_fetched_with_hold_method(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder, form: dict[str, str], method: str
) -> None:
    """Putting a leg on hold fetches its HoldUrl with HoldMethod (GET when not given); unholding fetches nothing."""
    _, conference = await inbound(client, sim)
    participant = api(f"/Conferences/{conference}/Participants/customer.json")
    held = await client.post(participant, data={"Hold": "true", "HoldUrl": "http://music.test/hold.mp3", **form})
    assert held.status_code == 200
    await sim.settle()
    await client.post(participant, data={"Hold": "false"})
    await sim.settle()
    assert [hook.method for hook in fetches(recorder, "/hold.mp3")] == [method]
    assert [(e["method"], e["status"]) for e in log_of(sim, "hold")] == [(method, 200)]


async def test_a_failed_hold_url_leaves_the_leg_on_hold(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """A holdUrl that fails has no documented consequence: the leg stays held; the error is an alert."""
    recorder.media["/hold"] = (404, "text/plain", "")
    _, conference = await inbound(client, sim)
    participant = api(f"/Conferences/{conference}/Participants/customer.json")
    await client.post(participant, data={"Hold": "true", "HoldUrl": "http://music.test/hold"})
    await sim.settle()
    (customer,) = (await truth(client, conference))["participants"]
    assert customer["hold"] is True
    assert [a.error_code for a in sim.world.state.alerts] == [11200]


async def test_an_invalid_method_is_refused(client: httpx.AsyncClient, sim: Simulator) -> None:
    """HoldMethod, WaitMethod and AnnounceMethod take GET or POST only."""
    _, conference = await inbound(client, sim)
    participant = api(f"/Conferences/{conference}/Participants/customer.json")
    for data in ({"Hold": "true", "HoldUrl": "http://music.test/hold.mp3", "HoldMethod": "PUT"},
                 {"WaitMethod": "put"}, {"AnnounceUrl": WAIT, "AnnounceMethod": "DELETE"}):
        response = await client.post(participant, data=data)
        assert response.status_code == 400 and response.json()["code"] == 20001, data
    (customer,) = (await truth(client, conference))["participants"]
    assert customer["hold"] is False


async def announced_call(client: httpx.AsyncClient, sim: Simulator, recorder: Recorder) -> tuple[str, str]:
    """A customer and an agent in a started conference subscribed to every event; (agent CallSid, conference)."""
    recorder.voice = room_twiml()
    _, conference = await inbound(client, sim)
    agent = (await dial(client, conference, "client:agent", "agent")).json()["call_sid"]
    await sim.settle()
    return agent, conference


async def test_an_announcement_to_a_participant(client: httpx.AsyncClient, sim: Simulator, recorder: Recorder) -> None:
    """AnnounceUrl on a participant is fetched with AnnounceMethod (POST by default), plays, then
    announcement-end carries AnnounceUrl and that participant's fields."""
    agent, conference = await announced_call(client, sim, recorder)
    url = "http://music.test/hello.mp3"
    updated = await client.post(api(f"/Conferences/{conference}/Participants/agent.json"), data={"AnnounceUrl": url})
    assert updated.status_code == 200
    await sim.settle()
    assert [(hook.method, hook.params["CallSid"]) for hook in fetches(recorder, "/hello.mp3")] == [("POST", agent)]
    (end,) = [e for e in recorder.conference_events() if e["StatusCallbackEvent"].startswith("announcement")]
    assert end["StatusCallbackEvent"] == "announcement-end"
    assert (end["AnnounceUrl"], end["CallSid"], end["ParticipantLabel"]) == (url, agent, "agent")
    assert "ReasonAnnouncementFailed" not in end
    assert [e["method"] for e in log_of(sim, "announce")] == ["POST"]


async def test_an_announcement_to_the_conference(client: httpx.AsyncClient, sim: Simulator, recorder: Recorder) -> None:
    """AnnounceUrl on the conference (here with AnnounceMethod GET) plays to the room: announcement-end with no
    participant fields."""
    _, conference = await announced_call(client, sim, recorder)
    url = "http://music.test/all.mp3"
    response = await client.post(api(f"/Conferences/{conference}.json"), data={"AnnounceUrl": url,
                                                                               "AnnounceMethod": "GET"})
    assert response.status_code == 200 and response.json()["status"] == "in-progress"
    await sim.settle()
    (fetch,) = fetches(recorder, "/all.mp3")
    assert (fetch.method, fetch.params["ConferenceSid"]) == ("GET", conference)
    (end,) = [e for e in recorder.conference_events() if e["StatusCallbackEvent"].startswith("announcement")]
    assert end["StatusCallbackEvent"] == "announcement-end" and end["AnnounceUrl"] == url
    assert "CallSid" not in end


async def test_a_failed_announcement(client: httpx.AsyncClient, sim: Simulator, recorder: Recorder) -> None:
    """An AnnounceUrl that fails or is not playable sends announcement-fail with ReasonAnnouncementFailed;
    one to a leg that is not connected fails at once; the legs stay where they were."""
    agent, conference = await announced_call(client, sim, recorder)
    recorder.media["/broken"] = (503, "text/plain", "")
    await client.post(api(f"/Conferences/{conference}/Participants/agent.json"),
                      data={"AnnounceUrl": "http://music.test/broken"})
    await client.post(api(f"/Conferences/{conference}.json"), data={"AnnounceUrl": "http://music.test/broken"})
    await sim.settle()
    await dial(client, conference, "client:late", "late")  # still ringing when the announcement comes
    await client.post(api(f"/Conferences/{conference}/Participants/late.json"),
                      data={"AnnounceUrl": "http://music.test/x.mp3"})
    await sim.settle()
    fails = [e for e in recorder.conference_events() if e["StatusCallbackEvent"] == "announcement-fail"]
    assert [(e.get("CallSid"), e["AnnounceUrl"]) for e in fails] == [
        (agent, "http://music.test/broken"), (None, "http://music.test/broken"), (None, "http://music.test/x.mp3")]
    assert all(e["ReasonAnnouncementFailed"] for e in fails)
    assert len((await truth(client, conference))["participants"]) == 3


async def test_announcements_need_the_announcement_subscription(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """Without `announcement` among the conference's events, an announcement plays but reports nothing."""
    _, conference = await inbound(client, sim)  # the default TwiML subscribes start ... modify only
    await client.post(api(f"/Conferences/{conference}.json"), data={"AnnounceUrl": "http://music.test/all.mp3"})
    await sim.settle()
    assert len(fetches(recorder, "/all.mp3")) == 1
    assert not [e for e in recorder.conference_events() if e["StatusCallbackEvent"].startswith("announcement")]


async def test_an_ended_conference_refuses_an_announcement(client: httpx.AsyncClient, sim: Simulator) -> None:
    """UpdateConference AnnounceUrl on a completed conference is 20404, like its participants' updates."""
    call_sid, conference = await inbound(client, sim)
    await client.post(f"/simulator/calls/{call_sid}/hangup")
    await sim.settle()
    response = await client.post(api(f"/Conferences/{conference}.json"), data={"AnnounceUrl": WAIT})
    assert response.status_code == 404 and response.json()["code"] == 20404
