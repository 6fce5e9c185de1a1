from piccolo.columns import ForeignKey, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from app.accounts.tables import Member


class SitePage(Table, tablename="site_page"):
    """A shop page as staff wrote it (terms, privacy, accessibility, company details; one row per
    slug; no row, or an empty text: the built-in text, app/pages/legal.py)."""

    slug = Varchar(length=40, unique=True)
    title = Varchar(length=120)
    body = Text(default="")
    updated_at = Timestamptz(null=True, default=None)
    updated_by = ForeignKey(Member, null=True, on_delete=OnDelete.set_null)
