"""Price history: each existing variant's effective price today, the first row of its history
(app/shop/prices.py). A reduction is announced only against a price recorded here, so a site
upgraded today shows no reduction until a price is lowered after it."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-07T12:09:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "price history: today's prices as its first rows"

BACKFILL = """
INSERT INTO price_change (variant, price, changed_at)
SELECT v.id, COALESCE(v.price, p.price), CURRENT_TIMESTAMP
FROM product_variant v JOIN product p ON p.id = v.product
WHERE NOT EXISTS (SELECT 1 FROM price_change c WHERE c.variant = v.id)
"""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="crowdmade", description=DESCRIPTION)

    async def run():
        await engine_finder().run_ddl(BACKFILL)

    async def undo():
        await engine_finder().run_ddl("DELETE FROM price_change")

    manager.add_raw(run)
    manager.add_raw_backwards(undo)
    return manager
