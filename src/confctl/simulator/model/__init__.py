"""The simulator's pure model of Twilio: calls, conferences, participants and recordings (no I/O)."""
