"""Payments' part of a member's personal data (app/accounts/personal_data.py): the member's
Stripe customer (and the cards saved on it) is deleted with the account: a job enqueued in the
deletion's transaction retries while Stripe is down; a first attempt is made at once after it."""

from __future__ import annotations

import logging
from typing import Any

from app.accounts.personal_data import Erasure, Part, register
from app.jobs.service import enqueue, job_handler
from app.payments.gateway import gateway

log = logging.getLogger("crowdmade.privacy")


async def erase(erasure: Erasure) -> None:
    customer = erasure.stripe_customer_id
    if customer:
        await enqueue("delete_stripe_customer", {"customer": customer}, unique_key=f"delete_stripe_customer:{customer}")


async def after(erasure: Erasure) -> None:
    if erasure.stripe_customer_id:
        erasure.stripe_customer_deleted = await delete_stripe_customer(erasure.stripe_customer_id)


async def delete_stripe_customer(customer: str) -> bool:
    """Best effort now; the job enqueued with the deletion retries while Stripe is down."""
    try:
        await gateway().delete_customer(customer)
    except Exception as error:  # noqa: BLE001  (Stripe down: the queued job retries)
        log.warning("stripe customer %s not deleted yet: %s", customer, error)
        return False
    return True


@job_handler("delete_stripe_customer")
async def delete_stripe_customer_job(payload: dict[str, Any]) -> None:
    await gateway().delete_customer(payload["customer"])  # raises while Stripe is down: retried


register(Part("payments", order=95, erase=erase, after=after))
