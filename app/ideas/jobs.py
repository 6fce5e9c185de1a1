"""Scheduled work for ideas: close voting windows."""

from typing import Any

from app.ideas import service
from app.jobs.service import job_handler


@job_handler("close_voting")
async def close_voting(payload: dict[str, Any]) -> None:
    await service.close_voting(int(payload["idea_id"]))


@job_handler("sweep_voting_windows", every_seconds=300)
async def sweep_voting_windows(payload: dict[str, Any]) -> None:
    """A safety net behind the per-idea jobs (e.g. a window shortened by staff)."""
    await service.close_expired_voting()
