"""In-site notifications for what happens elsewhere (app/events.py): inline, so a notification
is written with its change; each is keyed, so never twice."""

from __future__ import annotations

from app.accounts.language import member_locale
from app.campaigns.events import BackerNotice
from app.events import subscribe
from app.i18n import gettext, use_locale
from app.notifications.service import notify
from app.orders.events import OrderNotice
from app.shop.events import ProductQuestionAnswered, ProductQuestionAsked, ShopOrderPaid


@subscribe(ShopOrderPaid)
async def order_confirmed(event: ShopOrderPaid) -> None:
    with use_locale(await member_locale(event.member_id)):  # the buyer's language (also from a webhook)
        title = gettext("Order %(number)s is confirmed", number=event.number)
        body = gettext("Thank you! We'll email you when it ships.")
    await notify(event.member_id, "order", key=f"order:{event.order_id}:paid", title=title, body=body,
                 link=f"/orders/{event.number}", email=False)


@subscribe(ProductQuestionAsked)
async def question_for_the_creator(event: ProductQuestionAsked) -> None:
    with use_locale(await member_locale(event.creator_id)):
        title = gettext("%(name)s asked about %(product)s", name=event.asker_name, product=event.product_name)
    await notify(event.creator_id, "reply", key=f"product_question:{event.question_id}", title=title,
                 body=event.text[:280], link=f"{event.product_url}#question-{event.question_id}")


@subscribe(ProductQuestionAnswered)
async def answer_for_the_asker(event: ProductQuestionAnswered) -> None:
    with use_locale(await member_locale(event.asker_id)):
        title = gettext("Your question about %(product)s was answered", product=event.product_name)
    await notify(event.asker_id, "reply", key=f"product_answer:{event.question_id}", title=title,
                 body=event.text[:280], link=f"{event.product_url}#question-{event.question_id}")


@subscribe(BackerNotice)
async def backer_notice(event: BackerNotice) -> None:
    await notify(event.member_id, event.kind, key=event.key, title=event.title, link=event.link, email=False)


@subscribe(OrderNotice)
async def order_notice(event: OrderNotice) -> None:
    await notify(event.member_id, "order", key=event.key, title=event.title, link=event.link, email=False)
