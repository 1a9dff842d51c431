"""The other ways to write the apps, kept as benchmark variants (each one an entry in bench/catalog.py).

- `naive`: the tutorial's `yield` Session in `def` routes; deadlocks past pool + thread tokens.
- `blocking`: `async def` routes calling the blocking Session; every query stalls the event loop.
- `raw_sync`, `raw_async`: the ceilings: the same statements on the bare drivers, no ORM, no response models.

They reuse the apps' CRUD, lifespan and system routes; only what makes them different is here.
"""
