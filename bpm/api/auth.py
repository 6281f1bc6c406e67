"""Who is acting: the one place that turns a request into a user name.

Authentication comes later (API.md "Identity and access"); today the acting user is
whatever ``?user=`` says.
"""

from __future__ import annotations

from typing import Literal, overload

from bpm.errors import ValidationError

MISSING_USER = {"user": ["Missing data for required field."]}


@overload
def acting_user(user_param: str | None, *, required: Literal[True] = True) -> str: ...
@overload
def acting_user(user_param: str | None, *, required: bool) -> str | None: ...
def acting_user(user_param: str | None, *, required: bool = True) -> str | None:
    """The acting user from ``?user=`` (an empty value counts as missing).

    Raises ValidationError (400) when ``required`` and no user is given.
    """
    user = (user_param or "").strip()
    if user:
        return user
    if required:
        raise ValidationError("the query parameter 'user' is required", data=MISSING_USER)
    return None
