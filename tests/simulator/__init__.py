"""Tests of the Twilio simulator: its REST API against the spec, its model, callbacks and controls."""
