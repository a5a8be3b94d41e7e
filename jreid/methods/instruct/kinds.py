"""Instruct-ReID's task kinds and what a row's instruction is: plain constants, which configs import too."""

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


def ratio_key(task: str) -> str:
  """A task's key in config.data.task_ratios: its name with '+' as '_', so that a flag can name it
  (--config.data.task_ratios.text_sketch=2)."""
  return task.replace("+", "_")
