"""Points' part of a member's personal data (app/accounts/personal_data.py): the ledger,
vouchers and badges. The ledger stays after a deletion (the sums must keep adding up); it names
no one but the member's own id."""

from __future__ import annotations

from typing import Any

from app.accounts.personal_data import Part, register
from app.points.tables import MemberBadge, PointsEntry
from app.shop.tables import Voucher


async def export(member_id: int, profile: dict[str, Any]) -> dict[str, Any]:
    ledger = await PointsEntry.select(PointsEntry.points, PointsEntry.reason, PointsEntry.reference,
                                      PointsEntry.note, PointsEntry.created_at).where(
        PointsEntry.member == member_id).order_by(PointsEntry.id)
    vouchers = await Voucher.select(Voucher.code, Voucher.points, Voucher.amount, Voucher.currency, Voucher.status,
                                    Voucher.created_at, Voucher.spent_at).where(
        Voucher.member == member_id).order_by(Voucher.id)
    badges = await MemberBadge.select(MemberBadge.badge, MemberBadge.awarded_at).where(
        MemberBadge.member == member_id).order_by(MemberBadge.id)
    return {"points": {"balance": profile["points_balance"], "lifetime": profile["points_lifetime"],
                       "ledger": ledger, "vouchers": vouchers},
            "badges": badges}


register(Part("points", order=60, export=export))
