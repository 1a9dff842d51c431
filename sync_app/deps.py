from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from shared.config import Settings
from shared.web import app_settings


def get_db(request: Request) -> Iterator[Session]:
    with request.app.state.sessionmaker() as session:
        yield session


# scope="function": the session closes when the route returns, before the response is serialized
# (which needs another thread-pool token). With the default scope, in-flight requests beyond
# pool + tokens deadlock: see FastAPI issue #3205 and the `naive` variant.
SessionDep = Annotated[Session, Depends(get_db, scope="function")]
SettingsDep = Annotated[Settings, Depends(app_settings)]
