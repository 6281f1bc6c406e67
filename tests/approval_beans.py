"""A small bean module for the tests (``BPM_BEANS=tests.approval_beans``): what a deployer writes.

``BEANS`` names one object; ``register`` adds another, as a module may do either.
"""

from __future__ import annotations

from typing import Any


class ApprovalService:
    """Finds who approves an amount; its public methods are what expressions may call."""

    def __init__(self) -> None:
        self.calls = 0

    def findApprover(self, amount: int) -> str:  # the name the Camunda models call
        self.calls += 1
        return "boss" if amount > 1000 else "lead"

    def groups(self, amount: int) -> list[str]:
        return ["finance", "management"] if amount > 1000 else ["finance"]

    def limits(self) -> dict[str, Any]:
        return {"small": 1000, "levels": (1, 2)}

    def explode(self, reason: str) -> str:
        raise RuntimeError(f"approval service is down: {reason}")

    def leak(self) -> object:
        return object()

    def _secret(self) -> str:  # not public: expressions cannot call it
        return "hidden"


class Calendar:
    def workdays(self, days: int) -> int:
        return days + 2 * (days // 5)


APPROVALS = ApprovalService()
BEANS = {"approvalService": APPROVALS}


def register(registry: Any) -> None:
    registry.add("calendar", Calendar())
