"""ITKM's training as phases (jreid.train.phase): rounds of clustering between stretches of train steps.

The run is a list of segments (config.itkm): Stage I, `stage1_rounds` rounds
of `round_steps` steps; Stage II, `stage2_steps` steps; Stage III,
`stage3_rounds` rounds of `round_steps` steps; each is a phase, and the step
counter is global. A Stage I / III round's on-enter hook extracts the features
of every training image, clusters them per (scenario, group) domain and
rebuilds the round state (memories, Stage III's text features, matched
clusters and positive sets); its batches are the P x K stream of the pseudo
labels. Stage II's on-enter hook extracts the frozen image features its P x K
batches index. Pseudo-label quality against the true identities is logged per
round (console and TensorBoard, 'cluster/').

One TrainState holds everything: params {'image', 'prompts'}, the model state
(the round state, the frozen text tower), both optimizers' states (each stage
updates only its own: `staged_optimizer`) and the RNG. A round's setup is a
deterministic function of the state, so a run resumed on a round boundary
recomputes it, and one resumed inside a round rebuilds its stream.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from ml_collections import ConfigDict

from data_pipelines import mixing, pipeline
from data_pipelines.records import Record
from jreid.cluster.memory import init_memory
from jreid.methods.itkm import rounds
from jreid.train.optimizer import make_optimizer
from jreid.train.phase import Phase
from jreid.train.state import TrainState
from jreid.train.writer import RunLog

_PROMPT_STREAM = 0x70726F6D  # Keeps Stage II's batch draws apart from other streams.


@dataclasses.dataclass(frozen=True)
class Segment:
  """Steps [start, stop) (counted as steps done) of one round of a stage (1, 2 or 3)."""

  stage: int
  round: int
  start: int
  stop: int

  @property
  def index(self) -> int:
    """A number unique to the segment (seeds its stream)."""
    return 1000 * self.stage + self.round


def segments(cfg: ConfigDict) -> list[Segment]:
  """The run's segments in order; empty stages are left out."""
  lengths = ([(1, cfg.round_steps)] * cfg.stage1_rounds + [(2, cfg.stage2_steps)] * bool(cfg.stage2_steps)
             + [(3, cfg.round_steps)] * cfg.stage3_rounds)
  out, start, seen = [], 0, {}
  for stage, length in lengths:
    if length <= 0:
      raise ValueError(f"itkm: stage {stage} has rounds of {length} steps")
    out.append(Segment(stage, seen.get(stage, 0), start, start + length))
    seen[stage] = seen.get(stage, 0) + 1
    start += length
  if not out:
    raise ValueError("itkm: no stage has any step")
  return out


def staged_optimizer(image_tx: optax.GradientTransformation, prompt_tx: optax.GradientTransformation,
                     trained: str) -> optax.GradientTransformation:
  """An optimizer over params {'image', 'prompts'} that updates only `trained`; the other part gets zero
  updates and keeps its optimizer state, so every stage's optimizer shares one state structure."""
  if trained not in ("image", "prompts"):
    raise ValueError(f"trained must be 'image' or 'prompts', got {trained!r}")
  txs = {"image": image_tx, "prompts": prompt_tx}

  def init(params):
    return {key: tx.init(params[key]) for key, tx in txs.items()}

  def update(grads, state, params=None):
    updates, new = txs[trained].update(grads[trained], state[trained], None if params is None else params[trained])
    frozen = [key for key in txs if key != trained][0]
    return {trained: updates, frozen: jax.tree.map(jnp.zeros_like, grads[frozen])}, {**state, trained: new}

  return optax.GradientTransformation(init, update)


def itkm_phases(method, spec: pipeline.TrainBatchSpec, params: Any) -> list[Phase]:
  """The phases of an ITKM method (jreid.methods.itkm.method.ITKM) over the P x K batches of `spec`."""
  config = method.config
  order = segments(config.itkm)
  steps = {stage: sum(s.stop - s.start for s in order if s.stage == stage) for stage in (1, 2, 3)}
  starts = {s.stage: min(t.start for t in order if t.stage == s.stage) for s in order}
  # (optimizer, schedule) of each stage's trained part: the image encoder in Stages I and III, the prompts in II.
  image = {stage: make_optimizer(config.optim, params["image"], max(steps[stage], 1)) for stage in (1, 3)}
  prompts = make_optimizer(config.itkm.prompt_optim, params["prompts"], max(steps[2], 1))
  txs = {1: staged_optimizer(image[1][0], prompts[0], "image"), 2: staged_optimizer(image[1][0], prompts[0], "prompts"),
         3: staged_optimizer(image[3][0], prompts[0], "image")}
  schedules = {1: image[1][1], 2: prompts[1], 3: image[3][1]}
  losses = {1: method.image_loss(heterogeneous=False), 2: method.prompt_loss, 3: method.image_loss(heterogeneous=True)}
  phases = []
  for segment in order:
    if segment.stage == 2:
      on_enter, batches = _PromptStage(method, segment), lambda state: _PromptBatches(method, spec, state)
    else:
      restart = image[3][0] if (segment.stage, segment.round) == (3, 0) else None
      on_enter = _ImageRound(method, segment, restart)
      batches = _PseudoLabelBatches(method, spec, segment)
    phases.append(Phase(f"stage{segment.stage}/round{segment.round}", segment.start, segment.stop,
                        losses[segment.stage], txs[segment.stage], schedules[segment.stage], batches,
                        schedule_start=starts[segment.stage], on_enter=on_enter,
                        scalars={"stage": segment.stage}))
  return phases


class _SampleIndex:
  """Companions of a pseudo-labelled stream: each row's training-image index ('sample'). Picklable."""

  def __init__(self, samples: np.ndarray):
    self.samples = samples

  def __call__(self, record_index: int, record: Record, rng: np.random.Generator) -> dict[str, np.ndarray]:
    del record, rng
    return {"sample": np.int32(self.samples[record_index])}


def pseudo_label_stream(config: ConfigDict, method, labels: np.ndarray, spec: pipeline.TrainBatchSpec,
                        seed: int):
  """The P x K stream of the clustered images, one task per scenario with clusters ('mixed': every batch
  splits P over them); a scenario with fewer clusters than its share of P lists them several times."""
  scenarios = [s for s in np.unique(method.scenario) if np.any((method.scenario == s) & (labels >= 0))]
  if not scenarios:
    raise RuntimeError("clustering found no cluster in any scenario: nothing to train on (lower "
                       "itkm.min_samples or raise itkm.eps)")
  shares = mixing.ids_per_task([1.0] * len(scenarios), spec.num_ids)
  tasks = []
  for s, share in zip(scenarios, shares):
    members = np.flatnonzero((method.scenario == s) & (labels >= 0))
    copies = -(-int(share) // len(np.unique(labels[members])))
    samples = np.tile(members, copies)
    pids = np.concatenate([labels[members] + copy * method.capacity for copy in range(copies)])
    records = [dataclasses.replace(method.records[i], pid=int(pid)) for i, pid in zip(samples, pids)]
    task_spec = dataclasses.replace(spec, seed=seed)
    tasks.append(mixing.MixTask(f"scenario{s}", records, 1.0, task_spec, _SampleIndex(samples)))
  return mixing.mixed_dataset(tasks, "mixed", seed, config.data.num_workers)


def prompt_batch(labels: np.ndarray, num_ids: int, num_instances: int, seed: int, step: int) -> np.ndarray:
  """Stage II's batch `step`: `num_ids` clusters x `num_instances` of their images (int32 indices), drawn
  without replacement where there are enough; a pure function of its arguments."""
  rng = np.random.default_rng([seed, _PROMPT_STREAM, step])
  clustered = np.flatnonzero(labels >= 0)
  clusters = np.unique(labels[clustered])
  chosen = rng.choice(clusters, num_ids, replace=len(clusters) < num_ids)
  rows = [rng.choice(members, num_instances, replace=len(members) < num_instances)
          for members in (clustered[labels[clustered] == c] for c in chosen)]
  return np.concatenate(rows).astype(np.int32)


class _PromptBatches:
  """Stage II's batches from the state's step on: {'sample': this process's rows of `prompt_batch`}. A batch is
  a function of its step, so the stream's position needs no state of its own."""

  def __init__(self, method, spec: pipeline.TrainBatchSpec, state: TrainState):
    cfg = method.config.itkm
    self.labels = np.asarray(jax.device_get(state.model_state["round"].labels))
    if not np.any(self.labels >= 0):
      raise RuntimeError("Stage II needs Stage I's pseudo labels, and its last clustering found none")
    self.num_ids, self.num_instances, self.seed = cfg.prompt_num_ids, cfg.prompt_num_instances, method.config.seed
    self.rows = pipeline.host_rows(cfg.prompt_num_ids * cfg.prompt_num_instances, spec)
    self.step = int(state.step)

  def __next__(self) -> dict:
    self.step += 1
    return {"sample": prompt_batch(self.labels, self.num_ids, self.num_instances, self.seed, self.step)[self.rows]}

  def get_state(self) -> dict:
    return {}

  def set_state(self, state: dict) -> None:
    del state

  def close(self) -> None:
    pass


class _PseudoLabelBatches:
  """A round's stream: P x K of the state's pseudo labels, seeded by the round."""

  def __init__(self, method, spec: pipeline.TrainBatchSpec, segment: Segment):
    self.method, self.spec, self.segment = method, spec, segment

  def __call__(self, state: TrainState):
    labels = np.asarray(jax.device_get(state.model_state["round"].labels))
    seed = self.method.config.seed * 100003 + self.segment.index
    return iter(pseudo_label_stream(self.method.config, self.method, labels, self.spec, seed))


def _host(tree):
  return jax.tree.map(np.asarray, jax.device_get(tree))


def _put_round(state: TrainState, round_state: rounds.RoundState) -> TrainState:
  """The state with `round_state` laid out as its current round state is."""
  laid_out = jax.device_put(round_state, jax.tree.map(lambda x: x.sharding, state.model_state["round"]))
  return state.replace(model_state={**state.model_state, "round": laid_out})


class _PromptStage:
  """Stage II's on-enter hook: the frozen image features of every training image (the bank its batches index)."""

  def __init__(self, method, segment: Segment):
    self.method, self.segment = method, segment

  def __call__(self, state: TrainState, log: RunLog) -> TrainState:
    del log
    method = self.method
    rs = _host(state.model_state["round"])
    bank = method.extract(state.params["image"], method.records, rs.domain % 2, rs.domain // 2,
                          method.config.eval.batch_size)
    return _put_round(state, dataclasses.replace(rs, bank=bank))


class _ImageRound:
  """A Stage I / III round's on-enter hook: clusters the training images with the current encoder and installs
  the round's state; Stage III's first round first restarts the image optimizer (`restart`: its own warm-up
  and schedule)."""

  def __init__(self, method, segment: Segment, restart: optax.GradientTransformation | None):
    self.method, self.segment, self.restart = method, segment, restart

  def __call__(self, state: TrainState, log: RunLog) -> TrainState:
    if self.restart is not None:
      shardings = jax.tree.map(lambda x: x.sharding, state.opt_state["image"])
      fresh = jax.jit(self.restart.init, out_shardings=shardings)(state.params["image"])
      state = state.replace(opt_state={**state.opt_state, "image": fresh})
    round_state = self._cluster(state)
    _log_round(self.method, self.segment, round_state, log)
    return _put_round(state, round_state)

  def _cluster(self, state: TrainState) -> rounds.RoundState:
    method, segment, cfg = self.method, self.segment, self.method.config.itkm
    params = state.params["image"]
    previous = _host(state.model_state["round"])
    batch_size = method.config.eval.batch_size
    domain, centroids = previous.domain, previous.group_centroids
    if segment.stage == 1 and segment.round == 0:
      initial = np.zeros((len(method.records), previous.bank.shape[1]), np.float32)
      undecided = np.flatnonzero(method.group < 0)  # grouped by k-means on the initial features
      if len(undecided):
        initial[undecided] = method.extract(params, [method.records[i] for i in undecided],
                                            np.zeros(len(undecided), np.int32), method.scenario[undecided],
                                            batch_size)
      domain, centroids = rounds.assign_domains(method.records, method.scenario, method.group, initial,
                                                method.clothes_change_index, method.config.seed)
    features = method.extract(params, method.records, domain % 2, domain // 2, batch_size)
    labels, cluster_domain = rounds.cluster_domains(features, domain, method.capacity, cfg.eps, cfg.min_samples,
                                                    cfg.k1, cfg.k2)
    memory = np.asarray(init_memory(features, labels, method.capacity))
    out = dataclasses.replace(previous, labels=labels, domain=domain.astype(np.int32), cluster_domain=cluster_domain,
                              memory=memory, bank=features, group_centroids=centroids.astype(np.float32))
    if segment.stage == 3:
      instance_text = previous.instance_text
      if segment.round == 0:
        instance_text = _stage2_instance_text(method, state, previous)
      cluster_text, instance_text = rounds.dynamic_text_update(instance_text, labels, method.capacity, cfg.rho,
                                                               cfg.mu, update=cfg.dru)
      rng = np.random.default_rng([method.config.seed, segment.index])
      partner = rounds.match_domains(memory, cluster_text, cluster_domain, cfg.cluster_matching, rng,
                                     cfg.disagree_keep)
      positives = previous.positives
      if cfg.ihm:
        positives = rounds.ihm_positives(features, instance_text, domain, cfg.ihm_k)
      out = dataclasses.replace(out, partner=partner, instance_text=instance_text.astype(np.float32),
                                cluster_text=cluster_text, positives=positives)
    return out


def _stage2_instance_text(method, state: TrainState, previous: rounds.RoundState) -> np.ndarray:
  """Stage II's text features per image [N, D]: its cluster's learned prompt; an outlier takes the prompt of
  the nearest cluster (by image centroid) of its domain, or of any domain when its own has none."""
  valid = np.flatnonzero(previous.cluster_domain >= 0)
  encode = method.compiled(method.prompt_features)
  prompts = state.params["prompts"]
  chunks = [encode(state.model_state["text_tower"], prompts[valid[i:i + 256]]) for i in range(0, len(valid), 256)]
  texts = np.asarray(jax.device_get(jnp.concatenate(chunks))) if chunks else np.zeros((0, previous.bank.shape[1]))
  scores = previous.bank @ previous.memory[valid].T
  own = previous.cluster_domain[valid][None, :] == previous.domain[:, None]
  nearest = np.argmax(np.where(own.any(axis=1, keepdims=True) & ~own, -np.inf, scores), axis=1)
  position = np.full(len(previous.cluster_domain), -1, np.int64)
  position[valid] = np.arange(len(valid))
  index = np.where(previous.labels >= 0, position[previous.labels], nearest)
  return texts[index].astype(np.float32)


def _log_round(method, segment: Segment, state: rounds.RoundState, log: RunLog) -> None:
  pids = np.array([r.pid for r in method.records])
  scores = rounds.label_scores(state.labels, pids, state.domain, state.partner, method.scenario_names)
  step = segment.start
  log.scalars(step, scores, "cluster/")
  clusters = int(np.sum(state.cluster_domain >= 0))
  outliers = int(np.sum(state.labels < 0))
  parts = [f"{name} {scores[f'{name}/fscore']:.3f}/{scores[f'{name}/matched_fscore']:.3f}"
           for name in method.scenario_names if f"{name}/fscore" in scores]
  matched = int(np.sum(state.partner >= 0))
  log.line(f"stage {segment.stage} round {segment.round} (step {step}): {clusters} clusters, {outliers} outliers, "
           f"{matched} matched; pairwise F-score (clusters / matched clusters merged): " + ", ".join(parts))
