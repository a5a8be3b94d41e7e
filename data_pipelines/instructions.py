"""Fixed-sentence instructions of the Instruct-ReID tasks, ~20 paraphrases each.

Traditional, clothes-changing and visible-infrared ReID each fix the meaning
of the instruction; training draws one paraphrase per sample so the model
learns the meaning rather than one string. The first sentence of each pool is
the paper's.
"""

from __future__ import annotations

import numpy as np

POOLS = {
  "traditional": (
    "Do not change clothes.",
    "Keep the same clothes.",
    "The person wears the same clothes.",
    "Find this person in the same outfit.",
    "Same clothes as in the query.",
    "Retrieve the same person wearing the same clothes.",
    "The clothing does not change.",
    "Look for this person dressed the same way.",
    "Match the person with identical clothes.",
    "The outfit stays the same.",
    "Search for the same pedestrian in unchanged clothes.",
    "Clothes are unchanged.",
    "Find images of this person in this outfit.",
    "The target wears what the query wears.",
    "Same person, same clothing.",
    "Retrieve this pedestrian without a change of clothes.",
    "Keep the clothing fixed.",
    "Identify the person wearing these clothes.",
    "No change of outfit.",
    "Find the same person in the same attire.",
  ),
  "clothes_changing": (
    "Ignore clothes.",
    "Ignore the clothes.",
    "Disregard what the person wears.",
    "The person may wear different clothes.",
    "Find this person in any outfit.",
    "Clothing does not matter.",
    "Retrieve the same person regardless of clothing.",
    "The outfit may have changed.",
    "Do not rely on clothes.",
    "Match the person, not the clothes.",
    "Search for this pedestrian wearing other clothes.",
    "Clothes can be different.",
    "Identify the person even after a change of clothes.",
    "Pay no attention to the clothing.",
    "The target may have changed clothes.",
    "Look at the person rather than the outfit.",
    "Find the same person in changed clothes.",
    "Ignore the outfit.",
    "Retrieve this person whatever they wear.",
    "Clothing is irrelevant.",
  ),
  "visible_infrared": (
    "Retrieve cross modality image.",
    "Retrieve a cross-modality image.",
    "Find this person in infrared images.",
    "Search the other modality.",
    "Match visible and infrared images.",
    "Find the same person in the other modality.",
    "Retrieve the person across visible and infrared cameras.",
    "Cross modality.",
    "Look for this person in night-vision images.",
    "Find images of this person from a different sensor.",
    "Search across modalities.",
    "Retrieve the infrared or visible counterpart.",
    "The target image is from the other modality.",
    "Match this person between colour and infrared.",
    "Find the same pedestrian in a thermal-style image.",
    "Retrieve images of another modality.",
    "Cross-modal retrieval of this person.",
    "Search infrared and visible cameras for this person.",
    "Find this person under a different imaging modality.",
    "Retrieve this person from the other camera type.",
  ),
}


def draw(task: str, rng: np.random.Generator) -> str:
  """One paraphrase of `task`'s instruction ('traditional', 'clothes_changing', 'visible_infrared')."""
  pool = POOLS[task]
  return pool[rng.integers(len(pool))]
