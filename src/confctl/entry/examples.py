"""The request bodies' examples in the OpenAPI document: what `/docs` prefills and what generated clients show.

Without them Swagger UI builds a sample from each schema, taking every optional field's first example or branch:
`mode` and `coach` for an agent, `fallback_to` on a warm transfer, hold with mute and a mode at once, bounds
left at 0; the API rightly refuses such a body with 422. Each example here is accepted by a conference with the
customer, a joined `agent-alice` and a monitoring `supervisor-sam` (tests/entry/test_openapi_valid.py sends
every one).
"""

from __future__ import annotations

from typing import Any

from fastapi.openapi.models import Example


def _examples(**named: tuple[str, dict[str, Any]]) -> dict[str, Example]:
    return {name: Example(summary=summary, value=value) for name, (summary, value) in named.items()}


ADD_PARTICIPANT_EXAMPLES = _examples(
    agent=("Dial an agent's softphone", {"to": "client:bob", "role": "agent", "label": "agent-bob"}),
    external=("Dial an outside number, ringing at most 30 s",
              {"to": "+15557654321", "role": "external", "label": "expert", "timeout_s": 30}),
    monitor=("A supervisor listens in, unheard",
             {"to": "client:carol", "role": "supervisor", "label": "supervisor-carol", "mode": "monitor"}),
    coach=("A supervisor whispers to agent-alice",
           {"to": "client:carol", "role": "supervisor", "label": "supervisor-carol", "mode": "coach",
            "coach": "agent-alice"}),
)
CHANGE_PARTICIPANT_EXAMPLES = _examples(
    hold=("Put on hold: hears music, heard by nobody", {"hold": True}),
    unhold=("Take off hold", {"hold": False}),
    mute=("Mute: still hears everyone", {"muted": True}),
    barge=("A supervisor barges in: heard by everyone", {"mode": "barge"}),
    coach=("A supervisor coaches agent-alice", {"mode": "coach", "coach": "agent-alice"}),
)
START_TRANSFER_EXAMPLES = _examples(
    warm=("Warm: agent-alice consults agent-bob while the customer hears music",
          {"kind": "warm", "from": "agent-alice", "to": "client:bob", "label": "agent-bob"}),
    cold=("Cold: agent-alice leaves at once; a number is tried if agent-bob does not answer",
          {"kind": "cold", "from": "agent-alice", "to": "client:bob", "label": "agent-bob",
           "fallback_to": "+15557654321"}),
    external=("Cold, to an outside number",
              {"kind": "cold", "from": "agent-alice", "to": "+15557654321", "target_role": "external",
               "timeout_s": 30}),
)
RECORDING_EXAMPLES = _examples(
    pause=("Pause, recording silence meanwhile", {"action": "pause", "pause_behavior": "silence"}),
    stop=("Stop for good", {"action": "stop"}),
)
ANNOUNCEMENT_EXAMPLES = _examples(
    everyone=("Play to the whole conference", {"url": "https://media.example.com/this-call-is-recorded.mp3"}),
    one=("Play to agent-alice only", {"url": "https://media.example.com/supervisor-joining.mp3", "to": "agent-alice"}),
)
