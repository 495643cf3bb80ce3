"""Clients generated from confctl's live /openapi.json (Python and TypeScript), used as a frontend would."""
