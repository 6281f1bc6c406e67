"""Tokens moving through a spec until every token waits or the instance ends."""

from bpm.engine.engine import Engine, NewTask, StepResult

__all__ = ["Engine", "NewTask", "StepResult"]
