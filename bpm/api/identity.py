"""The identity store (extension): the groups and roles of each user."""

from __future__ import annotations

from typing import Any

from bpm.api.common import BASE_PATH, Blueprint, get_runtime, shown
from bpm.api.envelope import ErrorEnvelopeSchema, envelope
from bpm.api.flaskapp import MethodView
from bpm.api.policy import authorize
from bpm.api.schemas import IdentityBodySchema, IdentityEnvelope
from bpm.errors import ValidationError

blp = Blueprint("identity", __name__, url_prefix=f"{BASE_PATH}/identity", description="Groups and roles of users")


def _user(value: str) -> str:
    user = value.strip()
    if not user or len(user) > 200 or not user.isprintable():
        raise ValidationError(f"'{shown(value)}' is not a user name", data={"user": ["Not a valid user name."]})
    return user


USER = {
    "in": "path",
    "name": "user",
    "required": True,
    "description": "a user name (printable, at most 200 characters)",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
}


@blp.route("/<user>", parameters=[USER])
class UserIdentity(MethodView):
    @blp.response(200, IdentityEnvelope)
    def get(self, user: str) -> dict[str, Any]:
        """The groups and roles the identity store knows for a user (empty when unknown)."""
        grant = authorize("identity.read", _user(user))
        return envelope(get_runtime().identity(grant.acting_user))

    @blp.arguments(IdentityBodySchema)
    @blp.response(200, IdentityEnvelope)
    @blp.alt_response(415, schema=ErrorEnvelopeSchema, description="UNSUPPORTED_MEDIA_TYPE: the body is not JSON")
    def put(self, body: dict[str, Any], user: str) -> dict[str, Any]:
        """Replace a user's groups and roles."""
        authorize("identity.write")
        return envelope(get_runtime().set_identity(_user(user), body["groups"], body["roles"]))
