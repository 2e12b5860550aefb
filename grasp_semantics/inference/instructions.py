"""What any model takes as an instruction: non-empty, printable text of at most
``MAX_INSTRUCTION_CHARS`` characters. Torch-free, so that the node can check an instruction
before its model is loaded; :meth:`GraspPredictor.check_instruction` adds the model's own
vocabulary check."""

from __future__ import annotations

MAX_INSTRUCTION_CHARS = 1000


def check_instruction_text(instruction: object) -> str:
    """The stripped instruction, or a ValueError saying why no model takes it."""
    if not isinstance(instruction, str) or not instruction.strip():
        raise ValueError("instruction must be a non-empty string")
    if len(instruction) > MAX_INSTRUCTION_CHARS:
        raise ValueError(
            f"instruction has {len(instruction)} characters, at most "
            f"{MAX_INSTRUCTION_CHARS} allowed"
        )
    if not instruction.isprintable():
        raise ValueError("instruction contains control characters")
    return instruction.strip()
