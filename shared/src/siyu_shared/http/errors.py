"""A refusal a route or the domain decides after the framework's own validation, in the same documented shape.

FastAPI documents every 422 as ``HTTPValidationError`` (``detail``: a list of ``{loc, msg, type}``); a route that
answers 422 with a string, or items without ``type``, breaks that contract. Raise :func:`invalid` instead of an
``HTTPException(422, ...)``: the app's validation handler answers it like any other validation error.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError


def invalid(*, loc: Sequence[str | int], msg: str, type: str = "value_error") -> RequestValidationError:
    """One validation error at ``loc`` (``("body", "occurred_at")``), for ``raise``."""
    return RequestValidationError([{"loc": tuple(loc), "msg": msg, "type": type}])


def invalid_model(error: ValidationError, *, loc: Sequence[str | int] = ("body",)) -> RequestValidationError:
    """A model validated by hand (not as the route's body): its errors, under ``loc``."""
    return RequestValidationError(
        [{"loc": (*loc, *e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors()]
    )
