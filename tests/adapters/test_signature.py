"""Twilio signatures computed once per request, exactly as twilio-python computes them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from confctl.adapters.signature import SignatureChecker, compute_signature
from confctl.entry.webhooks import parse_form

TOKEN = "signing-token-123"
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
forms = st.dictionaries(text, st.lists(text, min_size=1, max_size=3), max_size=8)


class _Multi(dict[str, str]):
    """What twilio's validator reads repeated fields from."""

    def __init__(self, form: dict[str, list[str]]) -> None:
        super().__init__({k: v[0] for k, v in form.items()})
        self._all = form

    def getall(self, key: str) -> list[str]:
        return self._all[key]


@given(forms, st.sampled_from(["https://example.com/twilio/x", "http://127.0.0.1:8000/t?a=1&b=%20"]))
def test_our_signature_is_twilios_on_any_form(form: dict[str, list[str]], url: str) -> None:
    """For any fields (repeated, empty, non-ASCII), our one HMAC equals twilio-python's compute_signature."""
    assert compute_signature(TOKEN.encode(), url, form) == RequestValidator(TOKEN).compute_signature(url, _Multi(form))


def test_a_signature_over_the_url_with_its_default_port_is_also_accepted() -> None:
    """Twilio has signed with ':443' added; the checker accepts both forms of the URL, and nothing else."""
    form = {"CallSid": ["CA1"]}
    checker = SignatureChecker(TOKEN, "https://confctl.example.com")
    plain = compute_signature(TOKEN.encode(), "https://confctl.example.com/twilio/voice", form)
    ported = compute_signature(TOKEN.encode(), "https://confctl.example.com:443/twilio/voice", form)
    assert checker.is_valid("/twilio/voice", "", form, plain)
    assert checker.is_valid("/twilio/voice", "", form, ported)
    assert not checker.is_valid("/twilio/voice", "", form, "not-it")
    assert not checker.is_valid("/twilio/voice", "", form, "ünïcode")  # refused, not an error


@given(st.lists(st.tuples(text, text), max_size=8))
def test_the_form_parser_reads_what_parse_qsl_reads(pairs: list[tuple[str, str]]) -> None:
    """Any urlencoded body parses to the same pairs as urllib's parse_qsl(keep_blank_values=True)."""
    from urllib.parse import parse_qsl, urlencode

    body = urlencode(pairs)
    assert parse_form(body) == parse_qsl(body, keep_blank_values=True)
