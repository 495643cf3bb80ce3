"""Entry points: the FastAPI app factory, routers, schemas, error mapping and the CLI."""
