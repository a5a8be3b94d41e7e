"""ITKM (Pang et al., AAAI 2026): unsupervised multi-scenario ReID in three stages (METHODS.md, ITKM).

No identity label is used. The training images of each scenario
(visible-infrared, clothes-change, cross-resolution) are split into two
homogeneous groups; the image encoder (jreid.models.scenario_vit) has one
patch embedding per group and a scenario embedding. Every round, the images
of each (scenario, group) "domain" are clustered (jreid.methods.itkm.rounds);
the train step reads the round's state from `model_state['round']`.

- Stage I (`image_loss(heterogeneous=False)`): ℓ_homo against the cluster
  memory of the image's own domain, momentum-updated inside the step.
- Stage II (`prompt_loss`): M learned token embeddings per pseudo identity in
  "A photo of a X₁…X_M person.", read by the frozen text tower, against the
  image features of Stage I's final encoder, frozen (ℓ_i2t + ℓ_t2i + λ ℓ_sep;
  the paper's "second pre-trained CLIP" would put them in the untuned
  encoder's space, which ℓ_tg then compares with the tuned one's).
- Stage III (`image_loss(heterogeneous=True)`): ℓ_homo + ℓ_chm + ℓ_ihm + λ₂ ℓ_tg.

Parameters: {'image': the encoder, 'prompts': [C, M, width]}; the frozen text
tower lives in model_state['text_tower'], and, when the clothes-change
scenario is trained, the encoder's initial parameters in
model_state['initial'] (its features decide the clothes-change groups, by the
k-means centroids of the round state, for training and test images alike).
Its training phases, one per clustering round and one for Stage II, are
jreid.methods.itkm.phases. An export keeps the encoder, the initial encoder
and the centroids (`inference_variables`).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

from data_pipelines.pipeline import TrainBatchSpec, eval_batches
from data_pipelines.records import Record
from jreid.cluster.memory import momentum_update
from jreid.eval.extract import padded_chunks
from jreid.losses import itkm as itkm_losses
from jreid.methods.base import Method
from jreid.methods.itkm import phases
from jreid.methods.itkm.rounds import RoundState, empty_round, nearest_centroid
from jreid.methods.itkm.scenarios import SCENARIOS
from jreid.methods.text import method_tokenizer, tokenizer_cache_dir
from jreid.methods.towers import clip_towers
from jreid.models.clip import TextTransformer, VisionConfig
from jreid.models.preprocess import normalize_images
from jreid.models.pretrained import merged_tower
from jreid.models.scenario_vit import ScenarioViT
from jreid.ops import l2_normalize
from jreid.train.phase import Phase

CLUSTER_MATCHING = ("chm", "image", "none")
PROMPT_PREFIX, PROMPT_SUFFIX = "A photo of a", "person."


def record_group(record: Record) -> int:
  """The homogeneous group a record's scenario fixes: infrared or low resolution 1, else 0; -1 for
  clothes change (decided by k-means on the initial features)."""
  if record.scenario == "clothes_change":
    return -1
  return int(record.modality == "ir" or record.scale > 1)


def prompt_template(tokenizer, context_length: int, num_learned: int) -> tuple[np.ndarray, int]:
  """(token ids [context_length] of "A photo of a X₁…X_M person.", position of X₁).

  The ids at the M learned positions are placeholders (the prefix's last
  token): their embeddings are replaced by the learned ones.
  """
  prefix, suffix = (tokenizer.encode(text, context_length)[0] for text in (PROMPT_PREFIX, PROMPT_SUFFIX))
  inner = [row[1:list(row).index(tokenizer.eot_token_id)] for row in (prefix, suffix)]
  tokens = [tokenizer.sot_token_id, *inner[0], *[inner[0][-1]] * num_learned, *inner[1], tokenizer.eot_token_id]
  if len(tokens) > context_length:
    raise ValueError(f"the prompt needs {len(tokens)} tokens; model.text.context_length is {context_length}")
  ids = np.full(context_length, tokenizer.pad_token_id, np.int32)
  ids[:len(tokens)] = tokens
  return ids, 1 + len(inner[0])


class ImageNet(nn.Module):
  """uint8 images, groups, scenarios -> L2-normalised projected features [B, D] (fp32)."""

  vision: VisionConfig
  num_scenarios: int
  scenario_embedding: bool
  scenario_init_std: float

  @nn.compact
  def __call__(self, images: jax.Array, group: jax.Array, scenario: jax.Array) -> jax.Array:
    x = normalize_images(images, jnp.dtype(self.vision.dtype))
    out = ScenarioViT(self.vision, self.num_scenarios, 2, self.scenario_embedding, self.scenario_init_std,
                      name="encoder")(x, group, scenario)
    return l2_normalize(out.embedding)


class ITKM(Method):
  """ITKM: unsupervised, in the phases of jreid.methods.itkm.phases; `num_classes` is not used."""

  query_kinds = ("image",)
  labelled = False
  scenario_names = SCENARIOS
  clothes_change_index = SCENARIOS.index("clothes_change")

  def __init__(self, config: ConfigDict, num_classes: int, train_records: Sequence[Record] | None = None,
               tokenizer=None):
    """ITKM trains on the training records of config.itkm.scenarios, without their identities. `tokenizer`:
    instead of the run's (jreid.methods.text). Built from an export's config it is an encoder only."""
    super().__init__(config, num_classes, train_records, tokenizer)
    cfg = config.itkm
    unknown = set(cfg.scenarios) - set(SCENARIOS)
    if unknown or not cfg.scenarios:
      raise ValueError(f"itkm.scenarios must be a non-empty subset of {SCENARIOS}, got {tuple(cfg.scenarios)}")
    if cfg.cluster_matching not in CLUSTER_MATCHING:
      raise ValueError(f"itkm.cluster_matching must be one of {CLUSTER_MATCHING}, got {cfg.cluster_matching!r}")
    self.records = tuple(r for r in self.train_set if r.scenario in cfg.scenarios)
    if not self.records and not self.for_inference:
      raise ValueError(f"no training record belongs to the scenarios {tuple(cfg.scenarios)}")
    self.scenario = np.array([SCENARIOS.index(r.scenario) for r in self.records], np.int32)
    self.group = np.array([record_group(r) for r in self.records], np.int32)
    self.capacity = cfg.max_clusters or len(self.records)
    if self.tokenizer is None:
      self.tokenizer = method_tokenizer(config, self.train_set, tokenizer_cache_dir())
    self.vision, self.text = clip_towers(config, self.tokenizer)
    self.towers = {"vision": self.vision, "text": self.text}
    self.template, self.learned_at = prompt_template(self.tokenizer, self.text.context_length, cfg.num_prompt_tokens)
    self.image_net = ImageNet(self.vision, len(SCENARIOS), cfg.scenario_embedding, cfg.scenario_init_std)
    self.text_net = TextTransformer(self.text)
    self.pretrained = self.read_pretrained({"vision": self.vision.image_size}, text=True)

  @property
  def trains_clothes_change(self) -> bool:
    return "clothes_change" in self.config.itkm.scenarios

  def phases(self, spec: TrainBatchSpec, params: dict) -> list[Phase]:
    """Stage I's rounds, Stage II, Stage III's rounds (jreid.methods.itkm.phases)."""
    return phases.itkm_phases(self, spec, params)

  def init(self, rng: jax.Array, batch: dict) -> tuple[dict, dict]:
    """Both patch embeddings start as the (pretrained or random) ViT's; prompts ~ N(0, 0.02²). Jitted: eager,
    its many small ops are slow."""
    return self.compiled(self._fresh_variables)(rng, batch)

  def _fresh_variables(self, rng: jax.Array, batch: dict) -> tuple[dict, dict]:
    image_rng, text_rng, prompt_rng = jax.random.split(rng, 3)
    images, zeros = jnp.asarray(batch["image"][:2]), jnp.zeros((2,), jnp.int32)
    image = dict(self.image_net.init(image_rng, images, zeros, zeros)["params"]["encoder"])
    text = self.text_net.init(text_rng, jnp.asarray(self.template)[None])["params"]
    if self.pretrained:
      image["vision"] = merged_tower(self.pretrained["vision"], image["vision"], "vision")
      text = merged_tower(self.pretrained["text"], text, "text")
    image["patch_embed_1"] = image["vision"]["patch_embed"]
    image = {"encoder": image}
    initial = image if self.trains_clothes_change else {}
    if self.for_inference:
      return {"image": image}, {"initial": initial, "group_centroids": jnp.zeros((2, self.vision.embed_dim))}
    prompts = 0.02 * jax.random.normal(prompt_rng, (self.capacity, self.config.itkm.num_prompt_tokens,
                                                    self.text.width), jnp.dtype(self.text.param_dtype))
    model_state = {
        "round": empty_round(len(self.records), self.capacity, self.vision.embed_dim, self.config.itkm.ihm_k),
        "text_tower": text,
        "initial": initial,
    }
    return {"image": image, "prompts": prompts}, model_state

  def inference_variables(self, params: dict, model_state: dict) -> tuple[dict, dict]:
    """What encoding needs of the variables (jreid.methods.export): the encoder, and the initial encoder and
    k-means centroids that group clothes-change images; not the prompts, memories or pseudo labels."""
    return {"image": params["image"]}, {"initial": model_state["initial"],
                                        "group_centroids": group_centroids(model_state)}

  def image_features(self, image_params, images: jax.Array, group: jax.Array, scenario: jax.Array) -> jax.Array:
    """L2-normalised features [B, D] of uint8 images of the given groups and scenarios (-1: none)."""
    return self.image_net.apply({"params": image_params}, images, group, scenario)

  def encode_images(self, params, model_state, images: jax.Array) -> jax.Array:
    """Features of photos of no scenario (group 0), as `encode_records` encodes them."""
    n = images.shape[0]
    return self.image_features(params["image"], images, jnp.zeros((n,), jnp.int32), jnp.full((n,), -1, jnp.int32))

  def prompt_features(self, text_params, prompts: jax.Array) -> jax.Array:
    """L2-normalised text features [B, D] of the prompts of learned tokens [B, M, width]."""
    ids = jnp.broadcast_to(jnp.asarray(self.template), (prompts.shape[0], len(self.template)))
    embedded = self.text_net.apply({"params": text_params}, ids, method=lambda m, x: m.token_embedding(x))
    embedded = jax.lax.dynamic_update_slice_in_dim(embedded, prompts.astype(embedded.dtype), self.learned_at, 1)
    return l2_normalize(self.text_net.apply({"params": text_params}, ids, embedded).embedding)

  def image_loss(self, heterogeneous: bool):
    """The loss of Stage I (ℓ_homo) or, heterogeneous, Stage III; batch['sample'] holds the rows' image indices."""
    cfg = self.config.itkm

    def loss(params, model_state, batch, rng):
      del rng
      rs: RoundState = model_state["round"]
      sample = batch["sample"]
      label, domain = rs.labels[sample], rs.domain[sample]
      f = self.image_features(params["image"], batch["image"], domain % 2, domain // 2)
      own = rs.cluster_domain[None, :] == domain[:, None]
      terms = {"homo": itkm_losses.prototype_contrast(f, rs.memory, label, own, cfg.temperature)}
      total = terms["homo"]
      if heterogeneous:
        other = rs.cluster_domain[None, :] == (domain ^ 1)[:, None]
        if cfg.cluster_matching != "none":
          partner = jnp.where(label >= 0, rs.partner[jnp.clip(label, 0)], -1)
          terms["chm"] = itkm_losses.prototype_contrast(f, rs.memory, partner, other, cfg.temperature)
          total = total + terms["chm"]
        if cfg.ihm:
          other_images = rs.domain[None, :] == (domain ^ 1)[:, None]
          terms["ihm"] = itkm_losses.instance_positive_contrast(f, rs.bank, rs.positives[sample], other_images,
                                                                cfg.temperature)
          total = total + terms["ihm"]
        if cfg.text_guided_weight:
          terms["tg"] = itkm_losses.text_guided(f, rs.instance_text[sample], rs.cluster_text, own, cfg.temperature)
          total = total + cfg.text_guided_weight * terms["tg"]
      memory = momentum_update(rs.memory, jax.lax.stop_gradient(f), label, cfg.momentum)
      return total, (terms, {**model_state, "round": rs.replace(memory=memory)})

    return loss

  def prompt_loss(self, params, model_state, batch, rng):
    """Stage II: the learned tokens of the rows' clusters against the round's frozen image features."""
    del rng
    cfg = self.config.itkm
    rs: RoundState = model_state["round"]
    sample = batch["sample"]
    label = rs.labels[sample]
    images = rs.bank[sample]
    texts = self.prompt_features(model_state["text_tower"], params["prompts"][label])
    terms = {
        "i2t": itkm_losses.image_to_text(images, texts, cfg.text_temperature),
        "t2i": itkm_losses.text_to_image(images, texts, label, cfg.text_temperature),
    }
    total = terms["i2t"] + terms["t2i"]
    if cfg.separation_weight:
      terms["sep"] = itkm_losses.scenario_separation(texts, rs.domain[sample] // 2, cfg.separation_margin)
      total = total + cfg.separation_weight * terms["sep"]
    return total, (terms, model_state)

  def extract(self, image_params, records: Sequence[Record], group: np.ndarray, scenario: np.ndarray,
              batch_size: int) -> np.ndarray:
    """Features [N, D] of the records' images (no augmentation) with the given groups and scenarios."""
    encode = self.compiled(self.image_features)
    chunks = [encode(image_params, images, g, s)[:count]
              for (images, count), g, s in zip(eval_batches(records, self.vision.image_size, batch_size),
                                               padded_chunks(group, batch_size), padded_chunks(scenario, batch_size))]
    return np.asarray(jax.device_get(jnp.concatenate(chunks)), np.float32)

  def record_groups(self, state, records: Sequence[Record], batch_size: int) -> np.ndarray:
    """Groups of evaluation records: by modality / resolution, clothes change by the nearest k-means centroid
    of the initial features."""
    group = np.array([record_group(r) for r in records], np.int32)
    undecided = np.flatnonzero(group < 0)
    if len(undecided):
      if not self.trains_clothes_change:
        group[undecided] = 0
      else:
        subset = [records[i] for i in undecided]
        scenario = np.full(len(subset), SCENARIOS.index("clothes_change"), np.int32)
        initial = self.extract(state.model_state["initial"], subset, np.zeros_like(scenario), scenario, batch_size)
        group[undecided] = nearest_centroid(initial, np.asarray(group_centroids(state.model_state)))
    return group

  def encode_records(self, state, records: Sequence[Record], kind: str, batch_size: int) -> np.ndarray:
    """Features [N, D] of evaluation records (image queries and galleries), with their scenario and group."""
    self.check_query_kind(kind)
    scenario = np.array([SCENARIOS.index(r.scenario) if r.scenario in SCENARIOS else -1 for r in records], np.int32)
    return self.extract(state.params["image"], records, self.record_groups(state, records, batch_size), scenario,
                        batch_size)


def group_centroids(model_state: dict) -> jax.Array:
  """The clothes-change k-means centroids [2, D] of an export's model state, or of a training state's round
  state (a RoundState; a dict where the checkpoint was restored without its tree types)."""
  if "group_centroids" in model_state:
    return model_state["group_centroids"]
  round_state = model_state["round"]
  return round_state["group_centroids"] if isinstance(round_state, dict) else round_state.group_centroids
