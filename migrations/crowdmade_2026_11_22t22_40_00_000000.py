"""Database-specific pieces Piccolo cannot express portably.

- unique (member, idea) votes as a unique index (Piccolo's Unique constraint breaks SQLite);
- full-text search over ideas: an FTS5 table kept in sync by triggers on SQLite, a GIN
  expression index on PostgreSQL;
- the job queue's "next due" index.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T22:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "unique votes, full-text search, job index"

COMMON = [
    "CREATE UNIQUE INDEX vote_member_idea_uniq ON vote (member, idea)",
    "CREATE UNIQUE INDEX email_message_uniq ON email_message (kind, subject_ref, recipient)",
    "CREATE INDEX job_due_idx ON job (status, run_at)",
    "CREATE INDEX points_entry_member_reason_idx ON points_entry (member, reason, created_at)",
    "CREATE INDEX idea_status_hot_idx ON idea (status, hot_score)",
]

SQLITE = [
    """CREATE VIRTUAL TABLE idea_fts USING fts5(
        title, summary, description, content='idea', content_rowid='id',
        tokenize='porter unicode61')""",
    """CREATE TRIGGER idea_fts_ai AFTER INSERT ON idea BEGIN
        INSERT INTO idea_fts(rowid, title, summary, description)
        VALUES (new.id, new.title, new.summary, new.description);
    END""",
    """CREATE TRIGGER idea_fts_ad AFTER DELETE ON idea BEGIN
        INSERT INTO idea_fts(idea_fts, rowid, title, summary, description)
        VALUES ('delete', old.id, old.title, old.summary, old.description);
    END""",
    """CREATE TRIGGER idea_fts_au AFTER UPDATE OF title, summary, description ON idea BEGIN
        INSERT INTO idea_fts(idea_fts, rowid, title, summary, description)
        VALUES ('delete', old.id, old.title, old.summary, old.description);
        INSERT INTO idea_fts(rowid, title, summary, description)
        VALUES (new.id, new.title, new.summary, new.description);
    END""",
]

POSTGRES = [
    """CREATE INDEX idea_search_idx ON idea USING GIN (
        (setweight(to_tsvector('english', coalesce(title, '')), 'A') ||
         setweight(to_tsvector('english', coalesce(summary, '')), 'B') ||
         setweight(to_tsvector('english', coalesce(description, '')), 'C')))""",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="crowdmade", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        statements = COMMON + (SQLITE if engine.engine_type == "sqlite" else POSTGRES)
        for statement in statements:
            await engine.run_ddl(statement)

    async def undo():
        engine = engine_finder()
        if engine.engine_type == "sqlite":
            for name in ("idea_fts_ai", "idea_fts_ad", "idea_fts_au"):
                await engine.run_ddl(f"DROP TRIGGER IF EXISTS {name}")
            await engine.run_ddl("DROP TABLE IF EXISTS idea_fts")
        else:
            await engine.run_ddl("DROP INDEX IF EXISTS idea_search_idx")
        for name in ("vote_member_idea_uniq", "email_message_uniq", "job_due_idx",
                     "points_entry_member_reason_idx", "idea_status_hot_idx"):
            await engine.run_ddl(f"DROP INDEX IF EXISTS {name}")

    manager.add_raw(run)
    manager.add_raw_backwards(undo)
    return manager
