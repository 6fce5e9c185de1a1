"""Property test: the idea state machine refuses every move not in its table and records an
event for every move it makes."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.ideas import service as ideas
from app.ideas.service import MOVES, IdeaStatus, IllegalMove
from app.ideas.tables import Idea, IdeaEvent
from tests.factories import make_idea, make_member


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(targets=st.lists(st.sampled_from(list(IdeaStatus)), min_size=1, max_size=12))
async def test_only_moves_in_the_table_happen(targets):
    from tests.conftest import clean_database

    await clean_database()
    author = await make_member("Machine Author")
    idea_id = await make_idea(author, status="draft")
    current, moves = IdeaStatus.DRAFT, 0
    for target in targets:
        # Into and out of `removed` only for moderation: the same table, and the flag besides.
        moderated = len(targets) % 2 == 0
        allowed = target in MOVES[current] and (moderated or IdeaStatus.REMOVED not in (current, target))
        try:
            await ideas.move_idea(idea_id, target, actor_id=author.id, moderated=moderated)
        except IllegalMove:
            assert not allowed
        else:
            assert allowed
            current, moves = target, moves + 1
        row = await Idea.select(Idea.status).where(Idea.id == idea_id).first()
        assert row["status"] == current
    assert await IdeaEvent.count().where(IdeaEvent.idea == idea_id) == moves
