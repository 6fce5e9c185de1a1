"""Load and fault tests end by running the integrity audit (issue 7)."""

from app.audit import format_report, run_audit


async def assert_audit_clean(*, stripe: bool = False) -> None:
    report = await run_audit(stripe=stripe)
    assert report.ok, format_report(report)
