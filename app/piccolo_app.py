"""The one Piccolo app: every domain's tables, one migrations folder (migrations/)."""

from piccolo.conf.apps import AppConfig

from app.settings import PROJECT_ROOT
from app.tables import ALL_TABLES

APP_CONFIG = AppConfig(
    app_name="crowdmade",
    migrations_folder_path=str(PROJECT_ROOT / "migrations"),
    table_classes=list(ALL_TABLES),
    migration_dependencies=[],
    commands=[],
)
