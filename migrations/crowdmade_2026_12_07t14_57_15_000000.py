"""Notice and action: one report per notifier per content (a unique index), and the comment
reports still waiting for staff carried over into the one queue (members' reports, "against
the rules": the old form asked for nothing more)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-07T14:57:15:000000"
VERSION = "1.38.0"
DESCRIPTION = "moderation notices: unique per notifier, and open comment reports carried over"

STATEMENTS = [
    "CREATE UNIQUE INDEX moderation_notice_uniq ON moderation_notice (kind, target, notifier_key)",
    "CREATE INDEX moderation_notice_target ON moderation_notice (kind, target)",
    "CREATE INDEX moderation_decision_target ON moderation_decision (kind, target)",
    """INSERT INTO moderation_notice (kind, target, category, reason, reporter, name, email, notifier_key, created_at)
       SELECT 'comment', r.comment, 'rules', CASE WHEN r.reason = '' THEN 'Reported as spam or abuse.' ELSE r.reason END,
              r.reporter, '', '', 'm:' || CAST(r.reporter AS VARCHAR(20)), r.created_at
       FROM comment_report r JOIN comment c ON c.id = r.comment
       WHERE r.resolved_at IS NULL AND c.hidden_at IS NULL AND c.deleted_at IS NULL""",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="crowdmade", description=DESCRIPTION)

    async def run():
        for statement in STATEMENTS:
            await engine_finder().run_ddl(statement)

    async def undo():
        for name in ("moderation_notice_uniq", "moderation_notice_target", "moderation_decision_target"):
            await engine_finder().run_ddl(f"DROP INDEX IF EXISTS {name}")
        await engine_finder().run_ddl("DELETE FROM moderation_notice")

    manager.add_raw(run)
    manager.add_raw_backwards(undo)
    return manager
