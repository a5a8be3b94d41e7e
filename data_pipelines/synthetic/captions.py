"""Descriptions of synthetic pedestrians: image captions and clothes instructions.

Captions mention a random part of what the image shows (never what the view
hides, such as glasses seen from behind), with synonyms and several sentence
shapes, like the hand-written descriptions of CUHK-PEDES. Clothes
instructions describe an outfit, as the language instructions of
language-instructed ReID do ("Wear a black coat.").
"""

from __future__ import annotations

import numpy as np

from data_pipelines.synthetic.identities import Identity, Outfit

_BUILD = {"slim": ("slim", "thin", "slender"), "average": ("medium-build", "average-sized"),
          "heavy": ("heavy-set", "stocky", "broad")}
_HEIGHT = {"short": ("short",), "medium": ("medium-height",), "tall": ("tall",)}
_GARMENT = {
  "t-shirt": ("t-shirt", "tee", "T-shirt"), "tank top": ("tank top", "sleeveless top", "vest top"),
  "shirt": ("shirt", "button-up shirt", "collared shirt"), "sweater": ("sweater", "jumper", "pullover"),
  "hoodie": ("hoodie", "hooded sweatshirt"), "jacket": ("jacket", "zip jacket"),
  "coat": ("coat", "long coat", "overcoat"),
  "trousers": ("trousers", "pants", "slacks"), "jeans": ("jeans", "denim jeans", "denims"),
  "shorts": ("shorts",), "skirt": ("skirt", "short skirt"), "long skirt": ("long skirt", "maxi skirt"),
  "sneakers": ("sneakers", "trainers", "running shoes"), "boots": ("boots", "ankle boots"),
  "leather shoes": ("leather shoes", "dress shoes"),
}
_PLURAL = ("trousers", "jeans", "shorts", "sneakers", "boots", "leather shoes")
_PATTERN = {"striped": ("striped", "stripy"), "checked": ("checked", "plaid", "checkered"),
            "dotted": ("polka-dot", "dotted", "spotted")}
_HAIR = {"short": ("short",), "buzz": ("buzz-cut", "very short", "cropped"), "long": ("long", "shoulder-length"),
         "curly": ("curly", "frizzy")}
_ACCESSORY = {"glasses": ("glasses", "spectacles"), "sunglasses": ("sunglasses", "dark glasses"),
              "cap": ("{c} cap", "{c} baseball cap"), "hat": ("{c} hat", "{c} brimmed hat"),
              "mask": ("{c} face mask", "{c} mask"), "headphones": ("{c} headphones",)}
_BAG = {"backpack": ("backpack", "rucksack"), "shoulder bag": ("shoulder bag", "messenger bag", "crossbody bag"),
        "handbag": ("handbag", "hand bag", "purse")}
_SUBJECTS = ("A person", "A pedestrian", "This person", "The pedestrian", "Someone", "A {build} person",
             "A {height} pedestrian", "The {build} person", "A {height}, {build} person")
_PRONOUNS = ("The person", "This pedestrian", "The individual", "The pedestrian")
_VIEW = {"front": ("walking towards the camera", "is walking towards the camera"),
         "back": ("walking away from the camera", "is walking away from the camera"),
         "side": ("seen from the side", "is seen in profile")}
_INSTRUCTIONS = ("Wear {}.", "Wearing {}.", "The person is dressed in {}.", "Find this person in {}.",
                 "Same person, now wearing {}.", "Change into {}.", "Retrieve the person wearing {}.",
                 "The target wears {}.", "Dressed in {}.")


def _pick(rng: np.random.Generator, options) -> str:
  return options[rng.integers(len(options))]


def _with_article(words: str, plural: bool) -> str:
  return words if plural else ("an " if words[0] in "aeiou" else "a ") + words


def _upper(outfit: Outfit, rng: np.random.Generator, view: str) -> str:
  words = [outfit.upper_colour]
  if outfit.pattern in _PATTERN and rng.random() < 0.8:
    if rng.random() < 0.4:
      words = [f"{outfit.upper_colour} and {outfit.pattern_colour}"]
    words.append(_pick(rng, _PATTERN[outfit.pattern]))
  if outfit.sleeve in ("short", "long") and outfit.upper in ("t-shirt", "shirt") and rng.random() < 0.5:
    words.append(f"{outfit.sleeve}-sleeved")
  words.append(_pick(rng, _GARMENT[outfit.upper]))
  phrase = _with_article(" ".join(words), False)
  if outfit.pattern == "logo" and view == "front" and rng.random() < 0.6:
    phrase += " with a logo on the front"
  return phrase


def _garment(kind: str, colour: str, rng: np.random.Generator) -> str:
  return _with_article(f"{colour} {_pick(rng, _GARMENT[kind])}", kind in _PLURAL)


def _clothes(outfit: Outfit, rng: np.random.Generator, view: str, parts) -> str:
  phrases = []
  if "upper" in parts:
    phrases.append(_upper(outfit, rng, view))
  if "lower" in parts:
    phrases.append(_garment(outfit.lower, outfit.lower_colour, rng))
  if "shoes" in parts:
    phrases.append(_garment(outfit.shoes, outfit.shoes_colour, rng))
  return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def _hair(identity: Identity, rng: np.random.Generator) -> str:
  style, colour = identity.hair_style, identity.hair_colour
  if style == "bald":
    return _pick(rng, ("a shaved head", "a bald head"))
  if style in ("ponytail", "bun"):
    return f"{colour} hair tied in a {style}"
  return f"{_pick(rng, _HAIR[style])} {colour} hair"


def _clauses(identity: Identity, outfit: Outfit, view: str, rng: np.random.Generator) -> list[tuple[str, str]]:
  """(participle phrase, predicate) pairs for what this image shows."""
  parts = [p for p in ("upper", "lower", "shoes") if rng.random() < (0.9 if p != "shoes" else 0.45)] or ["upper"]
  clothes = _clothes(outfit, rng, view, parts)
  clauses = [(f"{_pick(rng, ('wearing', 'dressed in', 'in'))} {clothes}",
              f"{_pick(rng, ('is wearing', 'wears', 'has on', 'is dressed in'))} {clothes}")]
  hair = _hair(identity, rng)
  clauses.append((f"with {hair}", f"has {hair}"))
  accessory = identity.accessory
  if accessory in _ACCESSORY and not (view == "back" and accessory in ("glasses", "sunglasses", "mask")):
    item = _pick(rng, _ACCESSORY[accessory]).format(c=identity.accessory_colour)
    plural = accessory in ("glasses", "sunglasses", "headphones")
    item = _with_article(item, plural)
    clauses.append((f"wearing {item}", f"{_pick(rng, ('wears', 'is wearing', 'has on'))} {item}"))
  if identity.bag in _BAG:
    bag = _with_article(f"{identity.bag_colour} {_pick(rng, _BAG[identity.bag])}", False)
    clauses.append((f"{_pick(rng, ('carrying', 'with'))} {bag}", f"{_pick(rng, ('carries', 'has'))} {bag}"))
  clauses.append(_VIEW[view])
  return clauses


def _subject(identity: Identity, rng: np.random.Generator) -> str:
  return _pick(rng, _SUBJECTS).format(build=_pick(rng, _BUILD[identity.build]),
                                      height=_pick(rng, _HEIGHT[identity.height]))


def caption(identity: Identity, outfit: Outfit, view: str, rng: np.random.Generator) -> str:
  """One description mentioning two to five of the attributes the image shows."""
  clauses = _clauses(identity, outfit, view, rng)
  order = [0] + list(1 + rng.permutation(len(clauses) - 1)) if rng.random() < 0.7 else list(
    rng.permutation(len(clauses)))
  chosen = [clauses[i] for i in order[:rng.integers(2, min(5, len(clauses)) + 1)]]
  split = rng.integers(1, len(chosen) + 1)
  first = [c[0] for c in chosen[:split]]
  text = _subject(identity, rng) + " " + (first[0] if len(first) == 1 else
                                          ", ".join(first[:-1]) + " and " + first[-1]) + "."
  for _, predicate in chosen[split:]:
    text += f" {_pick(rng, _PRONOUNS)} {predicate}."
  return text


def captions(identity: Identity, outfit: Outfit, view: str, count: int, rng: np.random.Generator) -> tuple[str, ...]:
  """`count` different captions of one image."""
  out: list[str] = []
  for _ in range(20 * count):
    text = caption(identity, outfit, view, rng)
    if text not in out:
      out.append(text)
    if len(out) == count:
      break
  return tuple(out)


def clothes_instruction(outfit: Outfit, rng: np.random.Generator) -> str:
  """A language instruction naming an outfit: its upper and lower garment, sometimes shoes."""
  parts = ("upper", "lower", "shoes") if rng.random() < 0.5 else ("upper", "lower")
  return _pick(rng, _INSTRUCTIONS).format(_clothes(outfit, rng, "front", parts))
