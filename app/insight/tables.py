from piccolo.columns import Integer, Varchar
from piccolo.table import Table


class VisitSource(Table, tablename="visit_source"):
    """Where viewers of a subject came from per day (a share link's `?src=` tag, else the referring
    site or "direct"); unique (kind, subject, day, source) in the migration."""

    kind = Varchar(length=12)
    subject = Integer()
    day = Varchar(length=10, index=True)
    source = Varchar(length=40)
    visits = Integer(default=0)
