"""Money in integer fen: exact splits (largest remainder) and proportional scaling."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction


def split(total: int, weights: Sequence[Fraction | int]) -> list[int]:
    """``total`` fen split in proportion to ``weights``; the parts always sum exactly to ``total``.

    Largest-remainder (Hamilton) rounding: every part gets the floor of its exact quota, then the fen left over go
    one each to the largest fractional remainders, ties to the earlier weight, so the result is deterministic.
    All-zero weights give all-zero parts except when ``total`` is zero too.
    """
    if total < 0:
        return [-part for part in split(-total, weights)]
    exact = [Fraction(w) for w in weights]
    if any(w < 0 for w in exact):
        raise ValueError("weights must not be negative")
    whole = sum(exact, Fraction(0))
    if not exact:
        if total:
            raise ValueError("cannot split a non-zero amount over no parts")
        return []
    if whole == 0:
        if total:
            raise ValueError("cannot split a non-zero amount over zero weights")
        return [0] * len(exact)
    quotas = [total * w / whole for w in exact]
    parts = [q.numerator // q.denominator for q in quotas]
    left = total - sum(parts)
    by_remainder = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - parts[i]), i))
    for i in by_remainder[:left]:
        parts[i] += 1
    return parts


def scale(amount: int, numerator: int, denominator: int) -> int:
    """``amount * numerator / denominator`` rounded down (never pays a fen more than earned)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    return amount * numerator // denominator


def apply_rate(amount_fen: int, rate_bps: int) -> int:
    """Commission of ``amount_fen`` at ``rate_bps`` basis points, rounded down to the fen."""
    return amount_fen * rate_bps // 10_000
