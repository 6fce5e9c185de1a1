"""The wiring: imports every module that registers something at import time, so each entry point
(the web app, the worker, the demo loader, the tests) knows all of it after one import.

- job handlers (`@job_handler`);
- domain events' subscribers (`@subscribe`, app/events.py);
- what the HTTP glue and the outbox ask the domains (`app.web.identity`, the mail outbox's
  recipient language), so `web` and `mail` import no domain.
"""

import app.accounts.language  # noqa: F401  (an email's recipient language)
import app.accounts.privacy  # noqa: F401  (each domain's part of personal data, as below)
import app.accounts.service  # noqa: F401  (who a session or an API token belongs to)
import app.campaigns.delivery  # noqa: F401  (tells backers of a milestone or a new delivery date)
import app.campaigns.jobs  # noqa: F401
import app.campaigns.personal_data  # noqa: F401
import app.campaigns.stretch  # noqa: F401  (tells backers of an unlocked stretch goal)
import app.community.personal_data  # noqa: F401
import app.community.subscribers  # noqa: F401
import app.community.views  # noqa: F401
import app.experiments.personal_data  # noqa: F401
import app.experiments.subscribers  # noqa: F401  (domain events' subscribers, as below)
import app.experiments.web  # noqa: F401  (pages render with their experiments)
import app.ideas.jobs  # noqa: F401
import app.ideas.personal_data  # noqa: F401
import app.jobs.service  # noqa: F401
import app.mail.service  # noqa: F401
import app.moderation.personal_data  # noqa: F401
import app.notifications.personal_data  # noqa: F401
import app.notifications.service  # noqa: F401
import app.notifications.subscribers  # noqa: F401
import app.orders.fulfilment  # noqa: F401
import app.orders.personal_data  # noqa: F401
import app.orders.subscribers  # noqa: F401
import app.payments.personal_data  # noqa: F401
import app.points.badges  # noqa: F401
import app.points.personal_data  # noqa: F401
import app.points.subscribers  # noqa: F401
import app.shop.cart  # noqa: F401  (the header's cart badge)
import app.shop.checkout  # noqa: F401
import app.shop.personal_data  # noqa: F401
import app.shop.reviews  # noqa: F401
