"""Unique (campaign, other) for the incremental "backers also backed" counts."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T23:55:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "backed together unique pair"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="crowdmade", description=DESCRIPTION)

    async def run():
        await engine_finder().run_ddl("CREATE UNIQUE INDEX backed_together_pair_uniq ON backed_together (campaign, other)")

    async def undo():
        await engine_finder().run_ddl("DROP INDEX IF EXISTS backed_together_pair_uniq")

    manager.add_raw(run)
    manager.add_raw_backwards(undo)
    return manager
