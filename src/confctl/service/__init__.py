"""Orchestration: one async handler per command or callback, and the ports the adapters implement."""
