"""Unique keys for the community engine: one report per member per comment, one follow per
target, one setting per kind, one badge per member."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T23:36:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "community unique keys"

INDEXES = {
    "comment_report_uniq": "CREATE UNIQUE INDEX comment_report_uniq ON comment_report (comment, reporter)",
    "follow_uniq": "CREATE UNIQUE INDEX follow_uniq ON follow (member, kind, target)",
    "follow_target_idx": "CREATE INDEX follow_target_idx ON follow (kind, target)",
    "notification_setting_uniq": "CREATE UNIQUE INDEX notification_setting_uniq ON notification_setting (member, kind)",
    "member_badge_uniq": "CREATE UNIQUE INDEX member_badge_uniq ON member_badge (member, badge)",
    "notification_unread_idx": "CREATE INDEX notification_unread_idx ON notification (member, read_at)",
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
