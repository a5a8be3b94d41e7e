"""Instruct-ReID's task kinds, what a row's instruction is, and which parts of the network a task's rows use.

Plain constants and one small dataclass, which configs import too.
"""

import dataclasses
from typing import Iterable

# The six tasks of Instruct-ReID and the instruction each row of theirs carries.
TASK_KINDS = ("traditional", "clothes_changing", "visible_infrared", "text", "clothes_template",
              "language_instructed")
# The unified model's further tasks: low-resolution photos, sketches, and sketches with a caption.
QUERY_TASKS = ("cross_resolution", "sketch", "text+sketch")
ALL_TASKS = TASK_KINDS + QUERY_TASKS
ENCODERS = ("clip_text", "bert")  # config.model.instruction.encoder
# What a row's instruction is: nothing, a sentence that edits the image, a template image that edits it, a
# caption (text-to-image rows: encoded for the losses, never editing the image), or a caption whose embedding
# is added to the image's (text+sketch rows: the sum fusion of UNIReID).
NONE, TEXT, TEMPLATE, CAPTION, FUSION = range(5)
# The instruction kinds of each task's training rows (jreid.methods.instruct.tasks.InstructionCompanions).
ROW_KINDS = {
    "traditional": (TEXT,), "clothes_changing": (TEXT,), "visible_infrared": (TEXT,), "text": (CAPTION,),
    "clothes_template": (TEMPLATE,), "language_instructed": (TEXT,), "cross_resolution": (NONE,),
    "sketch": (NONE,), "text+sketch": (NONE, FUSION),
}


@dataclasses.dataclass(frozen=True)
class StepParts:
  """The parts of the network a training batch uses: the text tower, the template tower, the editing layers
  and the image-text losses (contrast and matching). A batch whose rows use fewer skips the rest, with the
  same losses: a part no row uses only ever meets masked-out or zero-weighted rows."""

  text: bool = True
  template: bool = True
  edit: bool = True
  image_text: bool = True


def step_parts(tasks: Iterable[str]) -> StepParts:
  """What a batch holding rows of `tasks` uses (ROW_KINDS)."""
  kinds = {kind for task in tasks for kind in ROW_KINDS[task]}
  return StepParts(text=bool(kinds & {TEXT, CAPTION, FUSION}), template=TEMPLATE in kinds,
                   edit=bool(kinds & {TEXT, TEMPLATE}), image_text=CAPTION in kinds)


def ratio_key(task: str) -> str:
  """A task's key in config.data.task_ratios: its name with '+' as '_', so that a flag can name it
  (--config.data.task_ratios.text_sketch=2)."""
  return task.replace("+", "_")
