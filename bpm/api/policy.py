"""Who may do what: every authorisation decision of the API, in one table and one function.

Each view calls :func:`authorize` once with its action and the ``?user=`` it was
given, and uses the :class:`Grant` it returns (the acting user, the groups/roles
to check candidates against, the actor for the audit trail). With authentication
off (:data:`bpm.api.auth.ANONYMOUS`) everything is allowed and ``?user=`` says who
acts, exactly as before authentication existed.

==================  =====  ============================================================
action              admin  acting user (``?user=``)
==================  =====  ============================================================
process.start       no     optional; a JWT user starts as themself
process.list        no     -
task.list           no     to-do lists of ``user`` (a JWT user: only their own, the
                           default) and queues of ``group``/``role`` (a JWT user: only
                           their own groups/roles); administrators may read any
task.claim          no     required (a JWT user: themself, the default); the runtime
task.unclaim               then checks assignee/candidate (403 NOT_CANDIDATE)
task.complete
task.variables      no     -
instance.read       no     - (instance, its tasks, history, incidents, external tasks;
                           instance lists, GET …/instances)
identity.read       no     the path's user: a JWT user only themself, unless admin
message.correlate   no     optional; a JWT user as themself (the starter of a
signal.broadcast           message/signal/conditional start)
condition.evaluate
external.work       no     - ; only API keys, administrators and JWT users with the
                           role ``BPM_WORKER_ROLE`` (fetchAndLock, complete, failure,
                           bpmnError, extendLock, unlock)
task.assign         yes    - (``?user=`` names the new assignee/candidates)
instance.assign     yes    -
instance.cancel     yes    -
cache.refresh       yes    -
class.action        yes    -
deployment.create   yes    -
identity.write      yes    -
external.retries    yes    - (setting retries resolves incidents)
==================  =====  ============================================================

A JWT caller is an administrator with the role ``BPM_ADMIN_ROLE`` (default
``admin``) in its roles claim; an API-key caller when its name is listed in
``BPM_API_KEY_ADMINS``. API-key callers are trusted backends: they act on behalf
of any ``?user=`` (whose groups and roles come from the identity store). Like the
admin role, the worker role (``BPM_WORKER_ROLE``, default ``worker``) comes from
the token's roles claim only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from flask import current_app

from bpm.api.auth import Caller, current_caller
from bpm.api.common import get_runtime
from bpm.errors import Forbidden, ValidationError
from bpm.records import Identity

UserUse = Literal["none", "optional", "required"]
MISSING_USER = {"user": ["Missing data for required field."]}


@dataclass(frozen=True, slots=True)
class Rule:
    """What one action needs: the admin role, and how it uses the acting user."""

    admin: bool = False
    user: UserUse = "none"
    others_if_admin: bool = False
    #: service work: also API keys and JWT users with the worker role (else admins only)
    worker: bool = False


RULES: dict[str, Rule] = {
    "process.start": Rule(user="optional"),
    "process.list": Rule(),
    "task.list": Rule(user="optional", others_if_admin=True),
    "task.claim": Rule(user="required"),
    "task.unclaim": Rule(user="required"),
    "task.complete": Rule(user="required"),
    "task.variables": Rule(),
    "instance.read": Rule(),
    "identity.read": Rule(user="required", others_if_admin=True),
    "message.correlate": Rule(user="optional"),
    "signal.broadcast": Rule(user="optional"),
    "condition.evaluate": Rule(user="optional"),
    "external.work": Rule(worker=True),
    "task.assign": Rule(admin=True),
    "instance.assign": Rule(admin=True),
    "instance.cancel": Rule(admin=True),
    "cache.refresh": Rule(admin=True),
    "class.action": Rule(admin=True),
    "deployment.create": Rule(admin=True),
    "identity.write": Rule(admin=True),
    "external.retries": Rule(admin=True),
}


@dataclass(frozen=True, slots=True)
class Grant:
    """What an allowed request may go on with.

    ``user``: the acting user (None where the action has none); ``users``: the to-do
    lists a task list reads; ``identity``: the acting user's groups and roles from
    the token (None: the identity store); ``actor``: who the audit trail names.
    """

    user: str | None = None
    users: tuple[str, ...] = ()
    identity: Identity | None = None
    actor: str | None = None
    identities: dict[str, Identity] = field(default_factory=dict)

    @property
    def acting_user(self) -> str:
        """The acting user of an action that requires one (400 VALIDATION_ERROR if none)."""
        if self.user is None:
            raise ValidationError("the query parameter 'user' is required", data=MISSING_USER)
        return self.user


def authorize(
    action: str,
    user: str | None = None,
    *,
    users: Iterable[str] = (),
    groups: Iterable[str] = (),
    roles: Iterable[str] = (),
) -> Grant:
    """Decide whether this request's caller may do ``action`` with ``?user=`` ``user``.

    ``users``/``groups``/``roles`` are the task list's parameters (``task.list`` only).
    Raises ValidationError (400) when a required user is missing, Forbidden (403)
    when the caller may not do it.
    """
    rule = RULES[action]
    caller = current_caller()
    if rule.admin and not caller.admin:
        raise Forbidden(f"'{action}' needs the administrator role")
    if rule.worker and not _is_worker(caller):
        raise Forbidden(f"'{action}' needs the worker role '{_worker_role()}', an API key or the administrator role")
    if action == "task.list":
        return _task_list(caller, _names(users), set(_names(groups)), set(_names(roles)))
    acting = _acting_user(caller, rule, _name(user))
    actor = caller.actor if caller.kind != "anonymous" else acting
    identity = caller.identity() if acting is not None and acting == caller.name else None
    return Grant(user=acting, identity=identity, actor=actor)


def _acting_user(caller: Caller, rule: Rule, given: str | None) -> str | None:
    """The user an action acts as: ``?user=``, or for a JWT caller themself."""
    if rule.user == "none":
        return None
    if caller.kind == "jwt":
        if given is not None and given != caller.name and not (rule.others_if_admin and caller.admin):
            raise Forbidden(f"a signed-in user may act only as themself, not as '{given}'")
        return given or caller.name
    if given is None and rule.user == "required":
        raise ValidationError("the query parameter 'user' is required", data=MISSING_USER)
    return given


def _task_list(caller: Caller, users: list[str], groups: set[str], roles: set[str]) -> Grant:
    if caller.kind == "jwt" and not (users or groups or roles):
        users = [str(caller.name)]  # a signed-in user's own to-do list by default
    if caller.kind == "jwt" and not caller.admin:
        if any(u != caller.name for u in users):
            raise Forbidden("a signed-in user may read only their own to-do list")
        own = caller.identity() or get_runtime().identity(str(caller.name))
        if not groups <= own.groups or not roles <= own.roles:
            raise Forbidden("a signed-in user may read only the queues of their own groups and roles")
    identity = caller.identity()
    identities = {identity.user: identity} if identity is not None and identity.user in users else {}
    return Grant(users=tuple(users), actor=caller.actor, identities=identities)


def _worker_role() -> str:
    return str(current_app.config.get("BPM_WORKER_ROLE") or "worker")


def _is_worker(caller: Caller) -> bool:
    """May do service work: administrators (and everyone with authentication off), API keys,
    JWT users whose token's roles include ``BPM_WORKER_ROLE``."""
    if caller.admin or caller.kind == "apikey":
        return True
    return caller.kind == "jwt" and _worker_role() in (caller.roles or ())


def _name(value: str | None) -> str | None:
    """A ``?user=`` value: stripped; empty counts as absent."""
    text = (value or "").strip()
    return text or None


def _names(values: Iterable[str] | None) -> list[str]:
    return [v.strip() for v in values or () if v and v.strip()]
