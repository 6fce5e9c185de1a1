"""Piccolo's engine and app registry, built from the one Settings object."""

from piccolo.conf.apps import AppRegistry
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine

from app.settings import get_settings


def build_engine():
    settings = get_settings()
    if settings.is_sqlite:
        path = settings.sqlite_path
        path.parent.mkdir(parents=True, exist_ok=True)
        # A long busy timeout: Piccolo opens a connection per query, and writers queue.
        return SQLiteEngine(path=str(path), timeout=30)
    return PostgresEngine(config={"dsn": settings.database_url.replace("postgres://", "postgresql://", 1)})


DB = build_engine()

APP_REGISTRY = AppRegistry(apps=["app.piccolo_app"])
