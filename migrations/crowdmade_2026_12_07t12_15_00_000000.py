"""An order's VAT rows: one per (order, rate), and the rows of orders paid before VAT was
recorded (every line then carried the default 25 %: one row with all of the order's total)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-07T12:15:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "order VAT: unique (order, rate) and the rows of orders already paid"

STATEMENTS = [
    'CREATE UNIQUE INDEX order_vat_uniq ON order_vat ("order", rate)',
    # VAT inside a gross amount at 25 %, rounded half up: (gross * 25 * 2 + 125) / 250 in integers.
    """INSERT INTO order_vat ("order", rate, gross, vat)
       SELECT o.id, 25, o.total, CAST((CAST(o.total AS BIGINT) * 50 + 125) / 250 AS INTEGER) FROM shop_order o
       WHERE o.paid_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM order_vat v WHERE v."order" = o.id)""",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="crowdmade", description=DESCRIPTION)

    async def run():
        for statement in STATEMENTS:
            await engine_finder().run_ddl(statement)

    async def undo():
        await engine_finder().run_ddl("DROP INDEX IF EXISTS order_vat_uniq")
        await engine_finder().run_ddl("DELETE FROM order_vat")

    manager.add_raw(run)
    manager.add_raw_backwards(undo)
    return manager
