"""What "done" means for a run: the objective file, the verifications run after the agent, and claims."""

from .spec import Objective, load_objective, parse_objective

__all__ = ["Objective", "load_objective", "parse_objective"]
