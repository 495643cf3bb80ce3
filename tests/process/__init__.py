"""Tests on real processes: `confctl serve` (SIGKILLed and restarted), `confctl simulator`, PostgreSQL."""
