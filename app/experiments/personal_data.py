"""Experiments' part of a member's personal data (app/accounts/personal_data.py): the variants
they were shown and whether they converted. The member's A/B subject is cleared with the
account (accounts), so nothing links those rows to anyone afterwards."""

from __future__ import annotations

from typing import Any

from app.accounts.personal_data import Part, register
from app.experiments.tables import ExperimentExposure


async def export(member_id: int, profile: dict[str, Any]) -> dict[str, Any]:
    exposures = await ExperimentExposure.select(ExperimentExposure.experiment.key, ExperimentExposure.variant,
                                                ExperimentExposure.exposed_at, ExperimentExposure.converted_at).where(
        ExperimentExposure.subject == f"m:{member_id}").order_by(ExperimentExposure.id)
    return {"experiments": exposures}


register(Part("experiments", order=85, export=export))
