"""Stretch goals: one goal per (campaign, metric, threshold)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-07T17:56:54:000000"
VERSION = "1.38.0"
DESCRIPTION = "stretch goals: unique per campaign, metric and threshold"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="crowdmade", description=DESCRIPTION)

    async def run():
        await engine_finder().run_ddl(
            "CREATE UNIQUE INDEX stretch_goal_uniq ON stretch_goal (campaign, metric, threshold)")

    async def undo():
        await engine_finder().run_ddl("DROP INDEX IF EXISTS stretch_goal_uniq")

    manager.add_raw(run)
    manager.add_raw_backwards(undo)
    return manager
