"""Import every model module so ``Base.metadata`` knows all tables (Alembic, create_all)."""

from certflow.store import models  # noqa: F401
from certflow.store.base import Base

for _module in ("communications", "register", "billing", "accounts", "workspace", "studio", "studio_texts"):
    try:
        __import__(f"certflow.store.{_module}")
    except ModuleNotFoundError as exc:  # pragma: no cover - only while a module is being written
        if exc.name != f"certflow.store.{_module}":
            raise

metadata = Base.metadata
