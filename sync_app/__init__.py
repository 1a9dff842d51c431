"""FastAPI app with plain `def` routes and a blocking SQLAlchemy Session (run in the thread pool)."""
