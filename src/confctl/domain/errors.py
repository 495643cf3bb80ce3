"""Domain errors: each names a stable `code` of the API page; none knows about HTTP."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain refused a command."""

    code = "domain_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ConferenceNotFound(DomainError):
    code = "conference_not_found"


class ParticipantNotFound(DomainError):
    code = "participant_not_found"


class TransferNotFound(DomainError):
    code = "transfer_not_found"


class ConferenceEnded(DomainError):
    code = "conference_ended"


class ParticipantNotConnected(DomainError):
    code = "participant_not_connected"


class TransferInProgress(DomainError):
    code = "transfer_in_progress"


class InvalidTransition(DomainError):
    code = "invalid_transition"


class LabelTaken(DomainError):
    code = "label_taken"


class CoachTargetNotConnected(DomainError):
    code = "coach_target_not_connected"


class CoachTargetOnHold(DomainError):
    """Twilio refuses to add or switch a coach to a participant on hold (16027)."""

    code = "coach_target_on_hold"


class InvalidLabel(DomainError):
    """A label Twilio would refuse (16024 on REST, 16023 in TwiML): see domain/labels.py (422)."""

    code = "invalid_label"


class NotASupervisor(DomainError):
    code = "not_a_supervisor"


class InvalidAddress(DomainError):
    code = "invalid_address"


class InvalidRequest(DomainError):
    """The request is well-formed but asks for something that makes no sense (422)."""

    code = "invalid_request"
