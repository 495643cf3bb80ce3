"""Twilio's REST API (2010-04-01) for calls, conferences, participants and conference recordings."""
