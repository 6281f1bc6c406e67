"""Tokens moving through a spec until every token waits or the instance ends."""

from bpm.engine.engine import Engine, NewTask, StepResult, called_children

__all__ = ["Engine", "NewTask", "StepResult", "called_children"]
