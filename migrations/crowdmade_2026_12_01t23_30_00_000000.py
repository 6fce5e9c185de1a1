"""PostgreSQL: a vote in one call, the database function crowdmade_cast_vote.

A new vote took ten statements (vote row, counter and hot score, the ledger's lock, daily cap,
entry and balance, the badge counts, BEGIN and COMMIT), and at ~1,000 votes/s the round trips
cost more than the work: asyncpg's send and receive in the web worker, the server's
per-statement overhead (make bench, votes: 664-752/s as statements, 907-1,054/s as this
function). app.ideas.service._cast_vote calls it and passes every rule (hot score constants,
support threshold, points and daily cap) as arguments, so the Python constants stay the one
source; _count_vote is the same sequence, statement by statement, for SQLite and the checked
path. Returns no vote row (inserted false) for a vote that isn't new or open; raises CM001 when
voting closed between the insert and the counter (the statement, and so the vote, rolls back).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T23:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "crowdmade_cast_vote: a vote in one statement on PostgreSQL"

FUNCTION = """
CREATE OR REPLACE FUNCTION crowdmade_cast_vote(
    p_member integer, p_idea integer, p_token text, p_now timestamptz, p_threshold integer,
    p_hot_epoch double precision, p_hot_divisor double precision,
    p_points integer, p_daily_cap integer, p_day_start timestamptz, p_cap_reasons text[],
    OUT inserted boolean, OUT vote_count integer, OUT awarded integer, OUT lifetime integer,
    OUT member_votes bigint, OUT has_first boolean, OUT has_hundred boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_used integer;
    v_write boolean := true;
BEGIN
    inserted := false;
    INSERT INTO vote (member, idea, token, created_at)
        SELECT p_member, i.id, p_token, p_now FROM idea i
        WHERE i.id = p_idea AND i.status = 'voting' AND i.voting_ends_at > p_now AND i.author <> p_member
        ON CONFLICT (member, idea) DO NOTHING;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    inserted := true;
    UPDATE idea SET vote_count = idea.vote_count + 1,
        hot_score = ROUND(CAST(LOG(GREATEST(CAST(idea.vote_count + 1 AS double precision), 1))
                    + (EXTRACT(EPOCH FROM COALESCE(idea.voting_starts_at, p_now)) - p_hot_epoch) / p_hot_divisor AS numeric), 7),
        ready_for_review = (idea.vote_count + 1 >= p_threshold)
        WHERE idea.id = p_idea AND idea.status = 'voting' AND idea.voting_ends_at > p_now
        RETURNING idea.vote_count INTO vote_count;
    IF vote_count IS NULL THEN  -- closed since the insert read it open: undo the vote row
        RAISE EXCEPTION 'voting is closed for idea %', p_idea USING ERRCODE = 'CM001';
    END IF;
    PERFORM 1 FROM member WHERE id = p_member FOR NO KEY UPDATE;
    awarded := p_points;
    IF p_daily_cap IS NOT NULL AND awarded > 0 THEN
        SELECT COALESCE(SUM(points), 0) INTO v_used FROM points_entry
            WHERE member = p_member AND reason = ANY (p_cap_reasons) AND created_at >= p_day_start;
        awarded := GREATEST(0, LEAST(awarded, p_daily_cap - v_used));
        v_write := awarded > 0;
    END IF;
    IF v_write THEN
        INSERT INTO points_entry (member, points, reason, reference, idempotency_key, note, created_at)
            VALUES (p_member, awarded, 'vote', 'idea:' || p_idea, 'vote:' || p_token, '', p_now)
            ON CONFLICT (idempotency_key) DO NOTHING;
        IF FOUND THEN
            UPDATE member SET points_balance = points_balance + awarded, points_lifetime = points_lifetime + awarded
                WHERE id = p_member RETURNING points_lifetime INTO lifetime;
        ELSE
            awarded := 0;
        END IF;
    END IF;
    SELECT EXISTS (SELECT 1 FROM member_badge WHERE member_badge.member = p_member AND badge = 'first_vote'),
           EXISTS (SELECT 1 FROM member_badge WHERE member_badge.member = p_member AND badge = 'hundred_votes')
        INTO has_first, has_hundred;
    IF NOT has_hundred THEN  -- counted up to 100 only, for the hundred-votes badge
        SELECT COUNT(*) INTO member_votes FROM (SELECT 1 FROM vote WHERE vote.member = p_member LIMIT 100) AS counted;
    END IF;
END
$$
"""

SIGNATURE = ("crowdmade_cast_vote(integer, integer, text, timestamptz, integer, double precision, "
             "double precision, integer, integer, timestamptz, text[])")


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="crowdmade", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        if engine.engine_type != "sqlite":
            await engine.run_ddl(FUNCTION)

    async def undo():
        engine = engine_finder()
        if engine.engine_type != "sqlite":
            await engine.run_ddl(f"DROP FUNCTION IF EXISTS {SIGNATURE}")

    manager.add_raw(run)
    manager.add_raw_backwards(undo)
    return manager
