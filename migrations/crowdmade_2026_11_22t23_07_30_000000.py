"""Unique keys that make pledges and charges exact (portable unique indexes; Piccolo's
Unique constraint breaks SQLite)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T23:07:30:000000"
VERSION = "1.38.0"
DESCRIPTION = "charge attempts unique per pledge, one open pledge per member and campaign"

STATEMENTS = [
    "CREATE UNIQUE INDEX charge_attempt_pledge_attempt_uniq ON charge_attempt (pledge, attempt)",
    "CREATE UNIQUE INDEX pledge_open_per_member_uniq ON pledge (campaign, member) "
    "WHERE status IN ('pending', 'active')",
    "CREATE INDEX pledge_campaign_status_idx ON pledge (campaign, status)",
    "CREATE INDEX campaign_status_ends_idx ON campaign (status, ends_at)",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="crowdmade", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    async def undo():
        engine = engine_finder()
        for name in ("charge_attempt_pledge_attempt_uniq", "pledge_open_per_member_uniq",
                     "pledge_campaign_status_idx", "campaign_status_ends_idx"):
            await engine.run_ddl(f"DROP INDEX IF EXISTS {name}")

    manager.add_raw(run)
    manager.add_raw_backwards(undo)
    return manager
