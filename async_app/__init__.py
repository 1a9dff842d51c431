"""FastAPI app with `async def` routes and SQLAlchemy's AsyncSession (asyncmy by default)."""
