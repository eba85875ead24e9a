"""Money in integer fen: exact splits (largest remainder) and proportional scaling."""

from __future__ import annotations

import math
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
    if len(weights) == 1:
        if weights[0] < 0:
            raise ValueError("weights must not be negative")
        if weights[0] == 0 and total:
            raise ValueError("cannot split a non-zero amount over zero weights")
        return [total]
    scaled = _as_integers(weights)
    if any(w < 0 for w in scaled):
        raise ValueError("weights must not be negative")
    if not scaled:
        if total:
            raise ValueError("cannot split a non-zero amount over no parts")
        return []
    whole = sum(scaled)
    if whole == 0:
        if total:
            raise ValueError("cannot split a non-zero amount over zero weights")
        return [0] * len(scaled)
    # Exact integer arithmetic: quota_i = total * w_i / whole = part_i + remainder_i / whole.
    parts: list[int] = []
    remainders: list[int] = []
    for weight in scaled:
        part, remainder = divmod(total * weight, whole)
        parts.append(part)
        remainders.append(remainder)
    left = total - sum(parts)
    if left:
        by_remainder = sorted(range(len(scaled)), key=lambda i: (-remainders[i], i))
        for i in by_remainder[:left]:
            parts[i] += 1
    return parts


def _as_integers(weights: Sequence[Fraction | int]) -> list[int]:
    """The weights scaled by the least common denominator: same proportions, integer arithmetic."""
    if all(isinstance(w, int) for w in weights):
        return [int(w) for w in weights]
    fractions = [Fraction(w) for w in weights]
    common = math.lcm(*(f.denominator for f in fractions))
    return [f.numerator * (common // f.denominator) for f in fractions]


def scale_each(amounts: Sequence[int], numerator: int, denominator: int) -> list[int]:
    """Every amount scaled by ``numerator / denominator``, the total rounded down, the parts summing to it exactly.

    Largest remainder over the exact scaled amounts: each part is the floor of its own exact value, and the fen
    the floors lose in all (fewer than the parts) go one each to the largest remainders, ties to the earlier amount.
    So no part is ever below its own floor or above its ceiling, whatever the other amounts are. (Splitting the
    rounded-down total by the amounts instead can leave a part a fen below its floor: its quota is computed from a
    total that already lost a fraction.)
    """
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    parts: list[int] = []
    remainders: list[int] = []
    for amount in amounts:
        part, remainder = divmod(amount * numerator, denominator)
        parts.append(part)
        remainders.append(remainder)
    left = sum(amounts) * numerator // denominator - sum(parts)
    if left:
        by_remainder = sorted(range(len(parts)), key=lambda i: (-remainders[i], i))
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
