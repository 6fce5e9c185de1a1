"""Unique keys for view counting: one viewer per subject and day, one counter row per subject
and day, one pair row."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T14:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "view counting unique keys"

INDEXES = {
    "viewer_day_uniq": "CREATE UNIQUE INDEX viewer_day_uniq ON viewer_day (kind, subject, day, viewer)",
    "view_count_uniq": "CREATE UNIQUE INDEX view_count_uniq ON view_count (kind, subject, day)",
    "viewed_together_uniq": "CREATE UNIQUE INDEX viewed_together_uniq ON viewed_together (kind, subject, other)",
    "viewer_day_day_idx": "CREATE INDEX viewer_day_day_idx ON viewer_day (day)",
}


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="crowdmade", description=DESCRIPTION)

    async def run():
        for statement in INDEXES.values():
            await engine_finder().run_ddl(statement)

    async def undo():
        for name in INDEXES:
            await engine_finder().run_ddl(f"DROP INDEX IF EXISTS {name}")

    manager.add_raw(run)
    manager.add_raw_backwards(undo)
    return manager
