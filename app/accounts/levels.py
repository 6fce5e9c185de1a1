"""Members' levels: a name for each threshold of lifetime points (DESIGN section 5).

A level is a property of the member's own `points_lifetime` column, so it lives with accounts;
the points ledger (app/points) earns the points and re-exports these names.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.i18n import N_


@dataclass(frozen=True)
class Level:
    name: str
    threshold: int


LEVELS: tuple[Level, ...] = (
    Level(N_("Newcomer"), 0),
    Level(N_("Supporter"), 250),
    Level(N_("Contributor"), 1_000),
    Level(N_("Insider"), 5_000),
    Level(N_("Tastemaker"), 20_000),
)


@dataclass(frozen=True)
class LevelProgress:
    level: Level
    next_level: Level | None
    lifetime: int

    @property
    def percent(self) -> int:
        if self.next_level is None:
            return 100
        span = self.next_level.threshold - self.level.threshold
        return max(0, min(100, (self.lifetime - self.level.threshold) * 100 // span))

    @property
    def points_to_next(self) -> int:
        return 0 if self.next_level is None else self.next_level.threshold - self.lifetime


def level_for(lifetime: int) -> LevelProgress:
    current = LEVELS[0]
    following: Level | None = None
    for index, level in enumerate(LEVELS):
        if lifetime >= level.threshold:
            current = level
            following = LEVELS[index + 1] if index + 1 < len(LEVELS) else None
    return LevelProgress(current, following, lifetime)
