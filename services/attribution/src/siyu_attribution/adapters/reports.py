"""SQL of the operators' reports (seed 004 §08, §12), for one tenant and one period [start, end)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Orders that count as sales: paid in the window, not closed without completing; GMV net of refunds.
_SALES = """
    SELECT * FROM orders
    WHERE tenant = :tenant AND paid_at >= :start AND paid_at < :end
      AND NOT (closed_at IS NOT NULL AND completed_at IS NULL)
"""


async def _rows(session: AsyncSession, sql: str, **params: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in await session.execute(text(sql), params)]


async def channels(session: AsyncSession, *, tenant: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """GMV and user share by channel and source kind (KOL, KOC, enterprise account…)."""
    return await _rows(
        session,
        f"""
        WITH sales AS ({_SALES}),
        totals AS (SELECT sum(amount_fen - refunded_fen) AS gmv, count(DISTINCT person_id) AS users FROM sales)
        SELECT channel,
               coalesce(source->>'account_kind', 'unknown') AS source_kind,
               count(*) AS orders,
               count(DISTINCT person_id) AS users,
               sum(amount_fen - refunded_fen) AS gmv_fen,
               round(sum(amount_fen - refunded_fen)::numeric / nullif(max(totals.gmv), 0), 4) AS gmv_share,
               round(count(DISTINCT person_id)::numeric / nullif(max(totals.users), 0), 4) AS user_share
        FROM sales, totals
        GROUP BY channel, source_kind
        ORDER BY gmv_fen DESC, channel, source_kind
        """,
        tenant=tenant,
        start=start,
        end=end,
    )


async def repurchase(session: AsyncSession, *, tenant: str, start: datetime, end: datetime) -> dict[str, Any]:
    """Share of the period's buyers who had bought before, and the mean days between consecutive orders."""
    rows = await _rows(
        session,
        """
        WITH history AS (
            SELECT person_id, paid_at,
                   lag(paid_at) OVER (PARTITION BY person_id ORDER BY paid_at, order_id) AS previous_at
            FROM orders
            WHERE tenant = :tenant AND paid_at < :end AND NOT (closed_at IS NOT NULL AND completed_at IS NULL)
        ),
        in_period AS (SELECT * FROM history WHERE paid_at >= :start)
        SELECT count(DISTINCT person_id) AS buyers,
               count(DISTINCT person_id) FILTER (WHERE previous_at IS NOT NULL) AS repeat_buyers,
               round(
                   (count(DISTINCT person_id) FILTER (WHERE previous_at IS NOT NULL))::numeric
                   / nullif(count(DISTINCT person_id), 0), 4
               ) AS repurchase_rate,
               round((avg(extract(epoch FROM paid_at - previous_at)) / 86400)::numeric, 2) AS repurchase_cycle_days
        FROM in_period
        """,
        tenant=tenant,
        start=start,
        end=end,
    )
    return rows[0]


async def super_users(
    session: AsyncSession, *, tenant: str, start: datetime, end: datetime, min_orders: int
) -> dict[str, Any]:
    """Buyers with at least ``min_orders`` orders in the window (seed 004 §12: more than ten a year)."""
    rows = await _rows(
        session,
        f"""
        WITH sales AS ({_SALES}),
        per_person AS (
            SELECT person_id, count(*) AS orders, sum(amount_fen - refunded_fen) AS gmv FROM sales GROUP BY person_id
        )
        SELECT count(*) FILTER (WHERE orders >= :min_orders) AS super_users,
               round(avg(gmv::numeric / orders) FILTER (WHERE orders >= :min_orders)) AS avg_order_value_fen,
               round(avg(orders) FILTER (WHERE orders >= :min_orders), 2) AS avg_orders,
               coalesce(sum(gmv) FILTER (WHERE orders >= :min_orders), 0) AS gmv_fen,
               round(
                   (sum(gmv) FILTER (WHERE orders >= :min_orders))::numeric / nullif(sum(gmv), 0), 4
               ) AS gmv_share
        FROM per_person
        """,
        tenant=tenant,
        start=start,
        end=end,
        min_orders=min_orders,
    )
    return rows[0]


async def funnel(session: AsyncSession, *, tenant: str, start: datetime, end: datetime) -> dict[str, Any]:
    """Of the persons who became leads in the period: touched in private domain, first order, repeat order."""
    rows = await _rows(
        session,
        """
        WITH new_leads AS (
            SELECT DISTINCT person_id FROM leads WHERE tenant = :tenant AND occurred_at >= :start AND occurred_at < :end
        ),
        reached AS (
            SELECT DISTINCT t.person_id FROM touches t JOIN new_leads USING (person_id) WHERE t.tenant = :tenant
        ),
        bought AS (
            SELECT o.person_id, count(*) AS orders FROM orders o JOIN new_leads USING (person_id)
            WHERE o.tenant = :tenant AND NOT (o.closed_at IS NOT NULL AND o.completed_at IS NULL)
            GROUP BY o.person_id
        )
        SELECT (SELECT count(*) FROM new_leads) AS leads,
               (SELECT count(*) FROM reached) AS reached,
               (SELECT count(*) FROM bought) AS first_order,
               (SELECT count(*) FROM bought WHERE orders >= 2) AS repeat_order
        """,
        tenant=tenant,
        start=start,
        end=end,
    )
    return rows[0]


async def attribution(session: AsyncSession, *, tenant: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """How the period's orders were attributed, one row per outcome: the roles credited with commission joined by
    ``+`` (``kol+staff_1v1``), ``activity_only`` (only activity credit, e.g. a group activator), or ``none``."""
    return await _rows(
        session,
        f"""
        WITH sales AS ({_SALES}),
        credit AS (
            SELECT o.order_id, o.amount_fen - o.refunded_fen AS net_fen,
                   string_agg(DISTINCT s.payee_role, '+' ORDER BY s.payee_role)
                       FILTER (WHERE s.kind = 'commission') AS roles,
                   coalesce(bool_or(s.kind = 'activity'), false) AS activity
            FROM sales o LEFT JOIN attribution_shares s
              ON s.tenant = o.tenant AND s.order_id = o.order_id AND s.attribution_id = o.attribution_id
            GROUP BY o.order_id, net_fen
        )
        SELECT coalesce(roles, CASE WHEN activity THEN 'activity_only' ELSE 'none' END) AS credited_to,
               count(*) AS orders,
               sum(net_fen) AS gmv_fen,
               round(count(*)::numeric / sum(count(*)) OVER (), 4) AS order_share
        FROM credit
        GROUP BY 1
        ORDER BY orders DESC, credited_to
        """,
        tenant=tenant,
        start=start,
        end=end,
    )


async def payees(
    session: AsyncSession, *, tenant: str, start: datetime, end: datetime, period: str
) -> list[dict[str, Any]]:
    """Per staff, activator and partner: attributed sales of orders paid in the period, and commission moved in it."""
    return await _rows(
        session,
        f"""
        WITH sales AS ({_SALES}),
        credited AS (
            SELECT s.payee_id, s.payee_role,
                   count(*) FILTER (WHERE s.kind = 'commission') AS orders,
                   count(*) FILTER (WHERE s.kind = 'activity') AS activity_credits,
                   sum(s.base_fen) AS attributed_sales_fen
            FROM sales o JOIN attribution_shares s
              ON s.tenant = o.tenant AND s.order_id = o.order_id AND s.attribution_id = o.attribution_id
            GROUP BY s.payee_id, s.payee_role
        ),
        moved AS (
            SELECT payee_id, payee_role,
                   -coalesce(sum(amount_fen) FILTER (WHERE account <> 'expense:commission'), 0) AS commission_fen,
                   -coalesce(sum(amount_fen) FILTER (WHERE account LIKE 'payable:%'), 0) AS payable_fen
            FROM ledger_entries
            WHERE tenant = :tenant AND period = :period
            GROUP BY payee_id, payee_role
        )
        SELECT coalesce(c.payee_id, m.payee_id) AS payee_id,
               coalesce(c.payee_role, m.payee_role) AS payee_role,
               coalesce(c.orders, 0) AS orders,
               coalesce(c.activity_credits, 0) AS activity_credits,
               coalesce(c.attributed_sales_fen, 0) AS attributed_sales_fen,
               coalesce(m.commission_fen, 0) AS commission_fen,
               coalesce(m.payable_fen, 0) AS payable_fen
        FROM credited c FULL JOIN moved m ON m.payee_id = c.payee_id AND m.payee_role = c.payee_role
        ORDER BY attributed_sales_fen DESC, payee_id
        """,
        tenant=tenant,
        start=start,
        end=end,
        period=period,
    )
