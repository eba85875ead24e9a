"""The fuzzer itself can fail: against a tiny app with known defects, it finds each of them, and nothing else.

No stack needed: the app has no database. Each defect is of a kind the services had (issue 15): a NUL character
that reaches storage, an integer beyond int64, an undocumented status, a body that is not what the schema says.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Body, FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from .harness import Profile, Report, Target, fuzz

# schemathesis' negative strategies use the `random` module (seeded by Hypothesis, so still deterministic).
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")


class Item(BaseModel):
    name: str
    size: int = 0


def defective_app() -> FastAPI:
    app = FastAPI()

    @app.get("/ok/{slug}")
    async def fine(slug: str, limit: Annotated[int, Query(ge=1, le=100)] = 10) -> dict[str, Any]:
        return {"slug": slug[:10], "limit": limit}

    @app.post("/items", status_code=201)
    async def store(item: Annotated[Item, Body()]) -> Item:
        if "\x00" in item.name:  # what Postgres does with a NUL in text
            raise ValueError("invalid byte sequence for encoding UTF8: 0x00")
        if not -(2**63) <= item.size < 2**63:  # what asyncpg does with an int beyond int64
            raise OverflowError("value out of int64 range")
        return item

    @app.get("/things/{thing_id}")
    async def thing(thing_id: int) -> dict[str, int]:
        raise HTTPException(404, detail="no such thing")  # 404 is not in the document

    @app.get("/shape", responses={200: {"content": {"application/json": {"schema": {"type": "integer"}}}}})
    async def shape() -> JSONResponse:
        return JSONResponse({"not": "an integer"})

    return app


async def run_fuzz(app: FastAPI, profile: Profile) -> Report:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://selftest") as client:
        target = Target(
            name="selftest",
            openapi=app.openapi(),
            client=client,
            loop=asyncio.get_running_loop(),
            headers={},
        )
        return await asyncio.to_thread(fuzz, target, profile)


async def test_the_fuzzer_finds_every_planted_defect_and_nothing_else() -> None:
    # Enough examples that the hostile mode puts each of its values in each spot of this tiny document.
    report = await run_fuzz(defective_app(), Profile(examples=60, seconds_per_operation=20))
    kinds = {(operation, kind.split(" at ")[0]) for operation, kind in report.findings}
    assert ("POST /items", "5xx: unhandled ValueError") in kinds, report.render()
    assert ("POST /items", "5xx: unhandled OverflowError") in kinds, report.render()
    assert ("GET /things/{thing_id}", "undocumented status 404") in kinds, report.render()
    assert any(op == "GET /shape" and "schema" in kind.lower() for op, kind in kinds), report.render()
    assert not [key for key in report.findings if key[0] == "GET /ok/{slug}"], report.render()
    # Every operation got requests in every mode, and was reached (not refused at the door).
    for operation in ("GET /ok/{slug}", "POST /items", "GET /things/{thing_id}", "GET /shape"):
        assert report.reached.get(operation), report.sent
    assert set(report.sent["POST /items"]) == {"positive", "negative", "hostile"}


async def test_the_fuzzer_is_deterministic_without_a_seed() -> None:
    first = await run_fuzz(defective_app(), Profile(examples=15, seconds_per_operation=10))
    second = await run_fuzz(defective_app(), Profile(examples=15, seconds_per_operation=10))
    assert first.render() == second.render()
    assert first.sent == second.sent
