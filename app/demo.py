"""Demo data (placeholder, replaced below)."""
from app.cli import DEMO_MEMBER, DEMO_STAFF


async def load_demo(*, seed: int = 42, scale: int = 1, force: bool = False) -> bool:
    from app.accounts.service import create_staff
    from app.db import start_database, stop_database
    await start_database()
    try:
        await create_staff(email=DEMO_STAFF[0], password=DEMO_STAFF[1], display_name="Sam Staff")
    finally:
        await stop_database()
    return True
