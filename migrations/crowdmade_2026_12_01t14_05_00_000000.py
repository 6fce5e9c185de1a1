"""The shop's unique keys and search, which Piccolo cannot express portably.

- one review per (product, member); one cart line per (cart, variant); one payment row per
  (order, attempt); one bought-together pair; one heart per member and product or idea;
- full-text search over products: FTS5 with triggers on SQLite, a GIN expression index on
  PostgreSQL (the same shape as the ideas' search).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T14:05:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "shop unique keys and product search"

INDEXES = {
    "product_review_uniq": "CREATE UNIQUE INDEX product_review_uniq ON product_review (product, member)",
    "cart_line_uniq": "CREATE UNIQUE INDEX cart_line_uniq ON cart_line (cart, variant)",
    "order_payment_uniq": "CREATE UNIQUE INDEX order_payment_uniq ON order_payment (\"order\", attempt)",
    "bought_together_uniq": "CREATE UNIQUE INDEX bought_together_uniq ON bought_together (product, other)",
    "wishlist_product_uniq": "CREATE UNIQUE INDEX wishlist_product_uniq ON wishlist_item (member, product) WHERE product IS NOT NULL",
    "wishlist_idea_uniq": "CREATE UNIQUE INDEX wishlist_idea_uniq ON wishlist_item (member, idea) WHERE idea IS NOT NULL",
    "shop_order_unpaid_idx": "CREATE INDEX shop_order_unpaid_idx ON shop_order (status, reserved_until)",
    "product_status_published_idx": "CREATE INDEX product_status_published_idx ON product (status, published_at)",
}

SQLITE = [
    """CREATE VIRTUAL TABLE product_fts USING fts5(
        name, summary, description, content='product', content_rowid='id',
        tokenize='porter unicode61')""",
    """CREATE TRIGGER product_fts_ai AFTER INSERT ON product BEGIN
        INSERT INTO product_fts(rowid, name, summary, description)
        VALUES (new.id, new.name, new.summary, new.description);
    END""",
    """CREATE TRIGGER product_fts_ad AFTER DELETE ON product BEGIN
        INSERT INTO product_fts(product_fts, rowid, name, summary, description)
        VALUES ('delete', old.id, old.name, old.summary, old.description);
    END""",
    """CREATE TRIGGER product_fts_au AFTER UPDATE OF name, summary, description ON product BEGIN
        INSERT INTO product_fts(product_fts, rowid, name, summary, description)
        VALUES ('delete', old.id, old.name, old.summary, old.description);
        INSERT INTO product_fts(rowid, name, summary, description)
        VALUES (new.id, new.name, new.summary, new.description);
    END""",
]

POSTGRES = [
    """CREATE INDEX product_search_idx ON product USING GIN (
        (setweight(to_tsvector('english', coalesce(name, '')), 'A') ||
         setweight(to_tsvector('english', coalesce(summary, '')), 'B') ||
         setweight(to_tsvector('english', coalesce(description, '')), 'C')))""",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="crowdmade", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        for statement in [*INDEXES.values(), *(SQLITE if engine.engine_type == "sqlite" else POSTGRES)]:
            await engine.run_ddl(statement)

    async def undo():
        engine = engine_finder()
        if engine.engine_type == "sqlite":
            for name in ("product_fts_ai", "product_fts_ad", "product_fts_au"):
                await engine.run_ddl(f"DROP TRIGGER IF EXISTS {name}")
            await engine.run_ddl("DROP TABLE IF EXISTS product_fts")
        else:
            await engine.run_ddl("DROP INDEX IF EXISTS product_search_idx")
        for name in INDEXES:
            await engine.run_ddl(f"DROP INDEX IF EXISTS {name}")

    manager.add_raw(run)
    manager.add_raw_backwards(undo)
    return manager
