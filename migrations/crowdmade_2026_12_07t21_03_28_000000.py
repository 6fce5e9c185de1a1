"""Delivery timeline: one shipping wave per (campaign, wave number)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-07T21:03:28:000000"
VERSION = "1.38.0"
DESCRIPTION = "delivery timeline: wave numbers unique per campaign"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="crowdmade", description=DESCRIPTION)

    async def run():
        await engine_finder().run_ddl(
            "CREATE UNIQUE INDEX delivery_update_wave_uniq ON delivery_update (campaign, wave)")

    async def undo():
        await engine_finder().run_ddl("DROP INDEX IF EXISTS delivery_update_wave_uniq")

    manager.add_raw(run)
    manager.add_raw_backwards(undo)
    return manager
