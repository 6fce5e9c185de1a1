"""Every domain's tables, in dependency order, for the Piccolo app and the tests."""

from app.accounts.tables import ApiToken, EmailToken, Member, Session
from app.ideas.tables import Category, Idea, IdeaEvent, IdeaImage, Vote
from app.jobs.tables import Job
from app.mail.tables import EmailMessage
from app.points.tables import PointsEntry

ALL_TABLES = (
    Member,
    Session,
    ApiToken,
    EmailToken,
    Category,
    Idea,
    IdeaImage,
    IdeaEvent,
    Vote,
    PointsEntry,
    Job,
    EmailMessage,
)
