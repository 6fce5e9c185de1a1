from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-07T14:57:21:500868"
VERSION = "1.38.0"
DESCRIPTION = "comment reports live in the moderation queue now"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="crowdmade", description=DESCRIPTION
    )

    manager.drop_table(
        class_name="CommentReport", tablename="comment_report", schema=None
    )

    manager.drop_column(
        table_class_name="Comment",
        tablename="comment",
        column_name="reports",
        db_column_name="reports",
        schema=None,
    )

    return manager
