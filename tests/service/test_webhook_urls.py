"""The webhook URLs confctl hands Twilio: one place, one fragment of connection overrides on each."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from confctl.entry.settings import Settings
from confctl.service.webhook_urls import CONNECTION_OVERRIDES, WebhookUrls, check_overrides, with_overrides


def test_each_webhook_url_ends_in_the_overrides_after_its_query() -> None:
    """Path, then query, then `#` and the overrides: the fragment is last, as a URL's fragment must be."""
    urls = WebhookUrls("https://confctl.example.com/")
    fragment = "#ct=3000&rt=4000&tt=15000&rc=5&rp=ct,rt,5xx"
    assert urls.voice() == "https://confctl.example.com/twilio/voice" + fragment
    assert urls.conference_status() == "https://confctl.example.com/twilio/conference-status" + fragment
    assert urls.call_status("room-CA1", "agent 1") == (
        "https://confctl.example.com/twilio/call-status?conference_id=room-CA1&label=agent+1" + fragment)
    assert urls.recording_status("room-CA1") == (
        "https://confctl.example.com/twilio/recording-status?conference_id=room-CA1" + fragment)


def test_the_default_overrides_are_within_twilios_limits() -> None:
    """The default passes the same check the setting gets: every key Twilio knows, every value in range."""
    assert check_overrides(CONNECTION_OVERRIDES) == CONNECTION_OVERRIDES


def test_with_overrides_replaces_a_fragment_and_empty_means_none() -> None:
    """A URL keeps one fragment, ours; with no overrides the URL is left bare."""
    assert with_overrides("http://x.test/a?b=1#old", "rc=2") == "http://x.test/a?b=1#rc=2"
    assert with_overrides("http://x.test/a#old", "") == "http://x.test/a"
    assert WebhookUrls("http://x.test", "").conference_status() == "http://x.test/twilio/conference-status"


@pytest.mark.parametrize("bad", ["rc=6", "rp=ct,sometimes", "ct=50", "tt=20000", "retries=3", "rc", "rc=1&rc=2",
                                 "sni=maybe"])
def test_a_setting_twilio_would_refuse_is_refused_at_startup(bad: str) -> None:
    """CONFCTL_TWILIO_CONNECTION_OVERRIDES outside Twilio's keys and limits fails validation, not every call."""
    with pytest.raises(ValidationError):
        Settings(twilio_connection_overrides=bad)


def test_the_setting_accepts_a_leading_hash_and_an_empty_value() -> None:
    """`#rc=2` and `rc=2` are the same setting; `` turns the overrides off."""
    assert Settings(twilio_connection_overrides="#rc=2&rp=5xx").twilio_connection_overrides == "rc=2&rp=5xx"
    assert Settings(twilio_connection_overrides="").twilio_connection_overrides == ""
    assert Settings().twilio_connection_overrides == CONNECTION_OVERRIDES
