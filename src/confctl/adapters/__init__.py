"""I/O: PostgreSQL event store, Twilio gateway, signatures, TwiML, embedded PostgreSQL."""
