"""Imports every module that registers job handlers, so a worker knows them all."""

import app.accounts.privacy  # noqa: F401
import app.campaigns.jobs  # noqa: F401
import app.community.views  # noqa: F401
import app.ideas.jobs  # noqa: F401
import app.jobs.service  # noqa: F401
import app.mail.service  # noqa: F401
import app.notifications.service  # noqa: F401
import app.orders.fulfilment  # noqa: F401
import app.points.badges  # noqa: F401
import app.shop.checkout  # noqa: F401
import app.shop.reviews  # noqa: F401
