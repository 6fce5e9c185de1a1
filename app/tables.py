"""Every domain's tables, in dependency order, for the Piccolo app and the tests."""

from app.accounts.tables import Address, ApiToken, Consent, EmailToken, Member, Session
from app.campaigns.tables import (
    BackedTogether,
    Campaign,
    CampaignEvent,
    CampaignVariant,
    ChargeAttempt,
    DeliveryUpdate,
    Pledge,
    PledgeEvent,
    StretchGoal,
)
from app.community.tables import (
    CampaignUpdate,
    Comment,
    Follow,
    ViewCount,
    ViewedTogether,
    ViewerDay,
)
from app.experiments.tables import Experiment, ExperimentExposure
from app.ideas.tables import Category, Idea, IdeaEvent, IdeaImage, Vote
from app.insight.tables import VisitSource
from app.jobs.tables import Job
from app.mail.tables import EmailMessage
from app.moderation.tables import Decision, Notice
from app.notifications.tables import Notification, NotificationSetting
from app.orders.tables import (
    Order,
    OrderEvent,
    OrderLine,
    OrderPayment,
    OrderVat,
    Refund,
    Withdrawal,
    WithdrawalLine,
)
from app.pages.tables import SitePage
from app.payments.tables import StripeEvent
from app.points.tables import MemberBadge, PointsEntry
from app.shop.tables import (
    BoughtTogether,
    Cart,
    CartLine,
    Collection,
    CollectionItem,
    PriceChange,
    Product,
    ProductImage,
    ProductQuestion,
    ProductVariant,
    Review,
    Voucher,
    WishlistItem,
)

ALL_TABLES = (
    Member,
    Session,
    ApiToken,
    EmailToken,
    Consent,
    Category,
    Idea,
    IdeaImage,
    IdeaEvent,
    Vote,
    Campaign,
    CampaignVariant,
    CampaignEvent,
    Pledge,
    PledgeEvent,
    BackedTogether,
    ChargeAttempt,
    StretchGoal,
    DeliveryUpdate,
    StripeEvent,
    Product,
    ProductVariant,
    PriceChange,
    ProductImage,
    ProductQuestion,
    Review,
    BoughtTogether,
    Cart,
    CartLine,
    Address,
    WishlistItem,
    Collection,
    CollectionItem,
    Order,
    OrderLine,
    OrderEvent,
    OrderPayment,
    Refund,
    OrderVat,
    Withdrawal,
    WithdrawalLine,
    PointsEntry,
    MemberBadge,
    Voucher,
    Comment,
    Follow,
    CampaignUpdate,
    ViewerDay,
    ViewCount,
    ViewedTogether,
    Notification,
    NotificationSetting,
    Experiment,
    ExperimentExposure,
    VisitSource,
    Job,
    EmailMessage,
    SitePage,
    Notice,
    Decision,
)
