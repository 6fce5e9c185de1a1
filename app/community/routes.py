"""HTML for conversation and notifications: comments, follows, creator
updates, the notification bell and list, email settings, unsubscribe, the leaderboard."""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.response import ServerSentEvent, ServerSentEventMessage

from app.accounts import service as accounts
from app.campaigns import live
from app.campaigns import service as campaigns
from app.community import activity, service
from app.community.tables import Comment
from app.errors import Conflict, Forbidden, FormError, NotFound
from app.i18n import gettext
from app.notifications import service as notifications
from app.points import badges
from app.points import service as points
from app.web.guards import requires_member, requires_staff
from app.web.responses import current_member, event_stream, is_htmx, redirect, render, safe_next


async def _form(request: Request) -> dict:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _message(error: Exception) -> str:
    return " ".join(error.errors.values()) if isinstance(error, FormError) else getattr(error, "message", str(error))


async def comments_context(idea_id: int, viewer) -> dict:  # noqa: ANN001
    comments = await service.thread(idea_id, viewer)
    return {"comments": comments, "comment_count": service.visible_count(comments), "comment_idea_id": idea_id}


async def _comments_response(request: Request, idea_id: int, error: str = "") -> Response:
    if is_htmx(request):
        ctx = await comments_context(idea_id, current_member(request))
        ctx["comment_error"] = error
        return render(request, "community/_comments.html", ctx)
    if error:
        return redirect(f"/ideas/{idea_id}#comments", flash=("error", error))
    return redirect(f"/ideas/{idea_id}#comments")


@post("/ideas/{idea_id:int}/comments", guards=[requires_member])
async def comment_add(request: Request, idea_id: int) -> Response:
    form = await _form(request)
    parent = form.get("parent", "")
    try:
        await service.add_comment(current_member(request), idea_id, form.get("body", ""),
                                  int(parent) if parent.isdecimal() else None)
    except (FormError, Forbidden, Conflict) as error:
        return await _comments_response(request, idea_id, _message(error))
    return await _comments_response(request, idea_id)


async def _comment_idea(comment_id: int) -> int:
    row = await Comment.select(Comment.idea).where(Comment.id == comment_id).first()
    if row is None:
        raise NotFound(gettext("Comment not found"))
    return row["idea"]


@post("/comments/{comment_id:int}/edit", guards=[requires_member])
async def comment_edit(request: Request, comment_id: int) -> Response:
    idea_id = await _comment_idea(comment_id)
    form = await _form(request)
    try:
        await service.edit_comment(current_member(request), comment_id, form.get("body", ""))
    except (FormError, Conflict) as error:
        return await _comments_response(request, idea_id, _message(error))
    return await _comments_response(request, idea_id)


@post("/comments/{comment_id:int}/delete", guards=[requires_member])
async def comment_delete(request: Request, comment_id: int) -> Response:
    idea_id = await _comment_idea(comment_id)
    try:
        await service.delete_comment(current_member(request), comment_id)
    except Conflict as error:
        return await _comments_response(request, idea_id, _message(error))
    return await _comments_response(request, idea_id)


@post("/follow", guards=[requires_member])
async def follow_toggle(request: Request) -> Response:
    form = await _form(request)
    kind, target = form.get("kind", ""), form.get("target", "")
    back = form.get("next", "/")
    if not target.isdecimal():
        return redirect("/", flash=("error", gettext("Nothing to follow.")))
    member = current_member(request)
    try:
        if form.get("action") == "unfollow":
            await service.unfollow(member, kind, int(target))
        else:
            await service.follow(member, kind, int(target))
    except (FormError, Conflict) as error:
        return redirect(safe_next(back), flash=("error", _message(error)))
    if is_htmx(request):
        return render(request, "community/_follow_button.html", {
            "follow_kind": kind, "follow_target": int(target), "next": back,
            "following": await service.is_following(member, kind, int(target))})

    return redirect(safe_next(back), flash=("success", gettext("Following.") if form.get("action") != "unfollow" else gettext("Unfollowed.")))


@post("/campaigns/{campaign_id:int}/updates", guards=[requires_member])
async def update_post(request: Request, campaign_id: int) -> Response:
    form = await _form(request)
    campaign = await campaigns.get_campaign(campaign_id)
    try:
        await service.post_update(current_member(request), campaign_id, title=form.get("title", ""),
                                  body=form.get("body", ""), visibility=form.get("visibility", "public"))
    except (FormError, Forbidden) as error:
        return redirect(f"/ideas/{campaign['idea']}#updates", flash=("error", _message(error)))
    return redirect(f"/ideas/{campaign['idea']}#updates", flash=("success", gettext("Update posted; backers and followers are notified.")))


@get("/notifications", guards=[requires_member])
async def notification_list(request: Request) -> Response:
    member = current_member(request)
    return render(request, "community/notifications.html", {"items": await notifications.recent(member.id)})


@get("/notifications/live", guards=[requires_member], opt={"skip_compression": True})
async def notification_live(request: Request) -> ServerSentEvent:
    """Server-sent events: `bell` each time the member's notifications change (from any process
    through the live fan-out); the bell then re-reads its count."""
    member_id = current_member(request).id

    async def bell() -> ServerSentEventMessage:
        return ServerSentEventMessage(event="bell", data="changed")

    return event_stream(live.subscribe_member(member_id), bell)


@get("/activity")
async def activity_feed(request: Request) -> Response:
    """The home page's activity feed (a fragment the page re-reads when told to)."""
    return render(request, "community/_activity.html", {"activity": await activity.recent_activity()})


@get("/activity/live", opt={"skip_compression": True})
async def activity_live() -> ServerSentEvent:
    async def changed() -> ServerSentEventMessage:
        return ServerSentEventMessage(event="activity", data="changed")

    return event_stream(live.subscribe_activity(), changed)


@get("/notifications/bell")
async def notification_bell(request: Request) -> Response:
    member = current_member(request)
    count = await notifications.unread_count(member.id) if member else 0
    return render(request, "community/_bell.html", {"unread": count})


@post("/notifications/{notification_id:int}/read", guards=[requires_member])
async def notification_read(request: Request, notification_id: int) -> Response:
    row = await notifications.mark_read(current_member(request).id, notification_id)

    return redirect(safe_next(row["link"], "/notifications"))


@post("/notifications/read-all", guards=[requires_member])
async def notification_read_all(request: Request) -> Response:
    await notifications.mark_all_read(current_member(request).id)
    return redirect("/notifications", flash=("info", gettext("All caught up.")))


@get("/notifications/settings", guards=[requires_member])
async def notification_settings(request: Request) -> Response:
    member = current_member(request)
    return render(request, "community/settings.html", {"modes": await notifications.settings_for(member.id),
                                                       "kinds": notifications.KINDS})


@post("/notifications/settings", guards=[requires_member])
async def notification_settings_save(request: Request) -> Response:
    member = current_member(request)
    form = await _form(request)
    for kind in notifications.KINDS:
        if kind in form:
            await notifications.set_mode(member.id, kind, form[kind])
    return redirect("/notifications/settings", flash=("success", gettext("Your email settings are saved.")))


@get("/unsubscribe")
async def unsubscribe_page(request: Request, m: int = 0, k: str = "", t: str = "") -> Response:
    return render(request, "community/unsubscribe.html", {"m": m, "k": k, "t": t,
                                                          "label": notifications.KINDS.get(k, ""), "done": False})


@post("/unsubscribe")
async def unsubscribe_confirm(request: Request) -> Response:
    form = await _form(request)
    member_id = int(form["m"]) if form.get("m", "").isdecimal() else 0
    try:
        await notifications.unsubscribe(member_id, form.get("k", ""), form.get("t", ""))
    except FormError as error:
        return render(request, "community/unsubscribe.html", {"m": 0, "k": "", "t": "", "label": "", "done": False,
                                                              "error": _message(error)}, status_code=400)
    return render(request, "community/unsubscribe.html", {"done": True, "label": notifications.KINDS[form["k"]],
                                                          "m": 0, "k": "", "t": ""})


@get("/leaderboard")
async def leaderboard_page(request: Request, period: str = "week") -> Response:
    if period not in ("week", "all"):
        period = "week"
    return render(request, "community/leaderboard.html", {"rows": await badges.leaderboard(period, 50), "period": period})


@post("/staff/members/{handle:str}/points", guards=[requires_staff])
async def staff_adjust_points(request: Request, handle: str) -> Response:
    profile = await accounts.get_profile(handle)
    form = await _form(request)
    try:
        amount = int(form.get("points", "0").strip() or 0)
        await points.adjust(current_member(request).id, profile["id"], amount, form.get("reason", ""))
    except ValueError:
        return redirect(f"/members/{handle}", flash=("error", gettext("Points must be a whole number.")))
    except FormError as error:
        return redirect(f"/members/{handle}", flash=("error", _message(error)))
    return redirect(f"/members/{handle}", flash=("success", gettext("Adjusted by %(amount)s points.", amount=amount)))


ROUTES = [comment_add, comment_edit, comment_delete,
          follow_toggle, update_post, notification_list, notification_live, notification_bell, activity_feed, activity_live, notification_read, notification_read_all,
          notification_settings, notification_settings_save, unsubscribe_page, unsubscribe_confirm, leaderboard_page,
          staff_adjust_points]
