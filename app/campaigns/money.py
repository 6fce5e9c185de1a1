"""Money typed by staff in forms: major units in, minor units out."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


def parse_money(text: str | int | None) -> int | None:
    """'499' or '499.50' or '499,50' (major units) -> minor units; None when blank."""
    if text is None or str(text).strip() == "":
        return None
    try:
        value = Decimal(str(text).strip().replace(" ", "").replace(",", "."))
        if not value.is_finite() or value < 0 or value > Decimal("10000000") or value != value.quantize(Decimal("0.01")):
            raise ValueError
    except (InvalidOperation, ArithmeticError):
        raise ValueError from None
    return int(value * 100)
