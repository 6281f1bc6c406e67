"""Tokens moving through a spec until every token waits or the instance ends."""

from bpm.engine.engine import Engine, called_children
from bpm.engine.results import NewTask, StepResult

__all__ = ["Engine", "NewTask", "StepResult", "called_children"]
