"""Unique keys for experiments (one exposure per subject) and visit sources (one row per day)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T14:41:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "experiment exposure and visit source unique keys"

INDEXES = {
    "experiment_exposure_uniq": "CREATE UNIQUE INDEX experiment_exposure_uniq ON experiment_exposure (experiment, subject)",
    "visit_source_uniq": "CREATE UNIQUE INDEX visit_source_uniq ON visit_source (kind, subject, day, source)",
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
