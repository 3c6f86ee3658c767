"""The exact arithmetic of SPEC §4 rules 2 and 7, in Decimal, so any two correct implementations
agree to the cent."""

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
HOURS_PLACES = Decimal("0.0001")
MINUTES_PER_HOUR = Decimal(60)


def money(value: Decimal) -> Decimal:
    """Half-up to the minor unit (2 decimals)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def line_total(qty: Decimal, unit_price: Decimal) -> Decimal:
    return money(qty * unit_price)


def line_vat(total: Decimal, vat_rate: Decimal) -> Decimal:
    return money(total * vat_rate)


def rounded_minutes(minutes: int, increment: int | None) -> int:
    """Round up to the contract's increment: 7 -> 15 and 16 -> 30 with 15."""
    if not increment:
        return minutes
    return -(-minutes // increment) * increment


def hours(minutes: int) -> Decimal:
    return (Decimal(minutes) / MINUTES_PER_HOUR).quantize(HOURS_PLACES, rounding=ROUND_HALF_UP)
