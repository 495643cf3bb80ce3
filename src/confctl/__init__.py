"""confctl: conference-call control for contact centers on Twilio."""

__version__ = "0.1.0"
