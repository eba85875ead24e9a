"""The demo that ``make run`` replays: a beauty brand's week of leads, friends, groups, orders and claims.

``dataset`` builds the story (pure, deterministic), ``wecom_sim`` plays WeCom's server API for the contacts in it,
``tenant`` configures a tenant on the four services, ``replay`` posts everything through the real endpoints with
valid signatures, and ``summary`` reads back what the platform made of it.
"""
