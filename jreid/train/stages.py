"""The multi-stage unsupervised driver (ITKM): rounds of clustering between stretches of train steps.

The run is a list of segments (config.itkm): Stage I, `stage1_rounds` rounds
of `round_steps` steps; Stage II, `stage2_steps` steps; Stage III,
`stage3_rounds` rounds of `round_steps` steps. The step counter is global. A
Stage I / III round starts by extracting the features of every training image,
clustering them per (scenario, group) domain, rebuilding the round state
(memories, Stage III's text features, matched clusters and positive sets)
and the P x K stream of the pseudo labels; Stage II draws P x K batches of the
round's frozen image features. Pseudo-label quality against the true
identities is logged per round (console and TensorBoard, 'cluster/').

One TrainState holds everything: params {'image', 'prompts'}, the model
state (the round state, the frozen text tower), both optimizers' states (each
stage updates only its own: `staged_optimizer`) and the RNG. A checkpoint is
that state with the data iterator's state, so a run killed anywhere resumes
identically; a checkpoint on a round boundary recomputes the next round's
setup, which is a deterministic function of the state.

The method provides `records`, `scenario`, `group`, `capacity`, `init`,
`image_loss(heterogeneous)`, `prompt_loss`, `extract` and `prompt_features`
(jreid.methods.itkm).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from ml_collections import ConfigDict

from data_pipelines import mixing, pipeline
from data_pipelines.records import Record
from jreid.cluster.memory import init_memory
from jreid.methods import itkm_rounds as rounds
from jreid.train import sharding
from jreid.train.checkpoint import Checkpointer
from jreid.train.loop import batch_spec
from jreid.train.optimizer import make_optimizer
from jreid.train.state import TrainState
from jreid.train.step import check_finite, make_train_step
from jreid.train.writer import MetricWriter, Progress

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


class _Setup:
  """The run's mesh, optimizers, fresh-state maker and restore template."""

  def __init__(self, config: ConfigDict, method):
    self.config, self.method = config, method
    self.mesh = sharding.make_mesh(config.mesh)
    self.spec = batch_spec(config, self.mesh)
    self.segments = segments(config.itkm)
    steps = {stage: sum(s.stop - s.start for s in self.segments if s.stage == stage) for stage in (1, 2, 3)}
    init_rng, self.run_rng = jax.random.split(jax.random.PRNGKey(config.seed))
    dummy = {"image": np.zeros((2, *self.spec.image_size, 3), np.uint8)}
    params, model_state = jax.eval_shape(method.init, init_rng, dummy)
    # (optimizer, schedule) of each stage's trained part: the image encoder in Stages I and III, the prompts in II.
    self.optimizers = {stage: make_optimizer(config.optim, params["image"], max(steps[stage], 1)) for stage in (1, 3)}
    self.optimizers[2] = make_optimizer(config.itkm.prompt_optim, params["prompts"], max(steps[2], 1))
    image, prompts = {1: self.optimizers[1][0], 3: self.optimizers[3][0]}, self.optimizers[2][0]
    self.txs = {1: staged_optimizer(image[1], prompts, "image"), 2: staged_optimizer(image[1], prompts, "prompts"),
                3: staged_optimizer(image[3], prompts, "image")}
    shapes = jax.eval_shape(self._make_state, params, model_state)
    self.shardings = sharding.state_shardings(self.mesh, shapes, config.mesh)
    self.abstract = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), shapes,
                                 self.shardings)
    self.layouts = sharding.step_shardings(self.mesh, self.shardings)
    self._init_rng, self._dummy = init_rng, dummy
    self._steps = {}

  def _make_state(self, params, model_state) -> TrainState:
    return TrainState.create(params, model_state, self.txs[1], self.run_rng)

  def create(self) -> TrainState:
    params, model_state = jax.device_get(jax.jit(self.method.init)(self._init_rng, self._dummy))
    laid_out = jax.jit(self._make_state, out_shardings=self.shardings)
    return laid_out(*jax.device_put((params, model_state), (self.shardings.params, self.shardings.model_state)))

  def schedule(self, stage: int) -> optax.Schedule:
    return self.optimizers[stage][1]

  def train_step(self, stage: int) -> Callable:
    """The jitted step of a stage (compiled once)."""
    if stage not in self._steps:
      loss = self.method.prompt_loss if stage == 2 else self.method.image_loss(heterogeneous=stage == 3)
      self._steps[stage] = make_train_step(loss, self.txs[stage], self.layouts)
    return self._steps[stage]

  def restart_image_optimizer(self, state: TrainState) -> TrainState:
    """Stage III starts a fresh image optimizer (its own warm-up and schedule)."""
    fresh = jax.jit(self.optimizers[3][0].init, out_shardings=self.shardings.opt_state["image"])(state.params["image"])
    return state.replace(opt_state={**state.opt_state, "image": fresh})

  def put_round(self, state: TrainState, round_state: rounds.RoundState) -> TrainState:
    laid_out = jax.device_put(round_state, self.shardings.model_state["round"])
    return state.replace(model_state={**state.model_state, "round": laid_out})


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


class _Run:
  """One training run: the state, its checkpointer, writer, progress and history."""

  def __init__(self, setup: _Setup, workdir: str, total: int, show_progress: bool):
    config = setup.config
    self.setup, self.config, self.method, self.total = setup, config, setup.method, total
    self.checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"), config.train.max_checkpoints)
    self.data_state = None
    if self.checkpointer.latest_step() is not None:
      self.state, self.data_state = self.checkpointer.restore(setup.abstract)
      print(f"resumed from {self.checkpointer.directory} at step {int(self.state.step)}")
    else:
      self.state = setup.create()
    self.writer = MetricWriter(workdir, enabled=jax.process_index() == 0)
    self.progress = Progress(int(self.state.step), total, setup.spec.num_ids * setup.spec.num_instances,
                             enabled=show_progress and jax.process_index() == 0)
    self.history = {}

  def close(self) -> None:
    self.progress.close()
    self.writer.close()
    self.checkpointer.wait()
    self.checkpointer.close()

  def steps(self, segment: Segment, next_batch: Callable[[], dict], data_state: Callable[[], dict]) -> None:
    """Runs the segment's remaining steps (up to the run's total), checkpointing as config.train says."""
    train_step = self.setup.train_step(segment.stage)
    schedule = self.setup.schedule(segment.stage)
    first = int(self.state.step) + 1
    last = min(segment.stop, self.total)
    pending = None  # (step, device metrics), read one step late so the device keeps busy
    for step in range(first, last + 1):
      batch = sharding.global_batch(next_batch(), self.setup.layouts.batch)
      self.state, metrics = train_step(self.state, batch)
      if pending is not None:
        self._settle(*pending, segment, schedule)
      pending = (step, metrics)
      if step % self.config.train.checkpoint_every == 0 or step == self.total:
        self._settle(*pending, segment, schedule)
        pending = None
        self.checkpointer.save(step, self.state, data_state())
    if pending is not None:
      self._settle(*pending, segment, schedule)

  def _settle(self, step: int, metrics, segment: Segment, schedule) -> None:
    host = {k: float(v) for k, v in jax.device_get(metrics).items()}
    check_finite(step, host)
    self.history[step] = host
    rate = self.progress.update(step, host)
    if step % self.config.train.log_every == 0 or step == self.total:
      lr = float(schedule(step - 1 - self._stage_start(segment.stage)))
      self.writer.scalars(step, {**host, "lr": lr, "images_per_second": rate, "stage": segment.stage},
                          "train/")

  def _stage_start(self, stage: int) -> int:
    return min(s.start for s in self.setup.segments if s.stage == stage)


def _host(tree):
  return jax.tree.map(np.asarray, jax.device_get(tree))


def _prepare_round(run: _Run, segment: Segment) -> None:
  """Clusters the training images with the current encoder and installs the round's state."""
  setup, method, cfg = run.setup, run.method, run.config.itkm
  params = run.state.params["image"]
  previous = _host(run.state.model_state["round"])
  batch_size = run.config.eval.batch_size
  domain, centroids = previous.domain, previous.group_centroids
  if segment.stage == 1 and segment.round == 0:
    initial = np.zeros((len(method.records), previous.bank.shape[1]), np.float32)
    undecided = np.flatnonzero(method.group < 0)  # grouped by k-means on the initial features
    if len(undecided):
      initial[undecided] = method.extract(params, [method.records[i] for i in undecided],
                                          np.zeros(len(undecided), np.int32), method.scenario[undecided], batch_size)
    domain, centroids = rounds.assign_domains(method.records, method.scenario, method.group, initial,
                                              method.clothes_change_index, run.config.seed)
  features = method.extract(params, method.records, domain % 2, domain // 2, batch_size)
  labels, cluster_domain = rounds.cluster_domains(features, domain, method.capacity, cfg.eps, cfg.min_samples,
                                                  cfg.k1, cfg.k2)
  memory = np.asarray(init_memory(features, labels, method.capacity))
  state = dataclasses.replace(previous, labels=labels, domain=domain.astype(np.int32), cluster_domain=cluster_domain,
                              memory=memory, bank=features, group_centroids=centroids.astype(np.float32))
  if segment.stage == 3:
    instance_text = previous.instance_text
    if segment.round == 0:
      instance_text = _stage2_instance_text(run, previous)
    cluster_text, instance_text = rounds.dynamic_text_update(instance_text, labels, method.capacity, cfg.rho, cfg.mu,
                                                             update=cfg.dru)
    rng = np.random.default_rng([run.config.seed, segment.index])
    partner = rounds.match_domains(memory, cluster_text, cluster_domain, cfg.cluster_matching, rng,
                                   cfg.disagree_keep)
    positives = previous.positives
    if cfg.ihm:
      positives = rounds.ihm_positives(features, instance_text, domain, cfg.ihm_k)
    state = dataclasses.replace(state, partner=partner, instance_text=instance_text.astype(np.float32),
                                cluster_text=cluster_text, positives=positives)
  run.state = setup.put_round(run.state, state)
  _log_round(run, segment, state)


def _stage2_instance_text(run: _Run, previous: rounds.RoundState) -> np.ndarray:
  """Stage II's text features per image [N, D]: its cluster's learned prompt; an outlier takes the prompt of
  the nearest cluster (by image centroid) of its domain, or of any domain when its own has none."""
  method = run.method
  valid = np.flatnonzero(previous.cluster_domain >= 0)
  encode = jax.jit(method.prompt_features)
  prompts = run.state.params["prompts"]
  chunks = [encode(run.state.model_state["text_tower"], prompts[valid[i:i + 256]]) for i in range(0, len(valid), 256)]
  texts = np.asarray(jax.device_get(jnp.concatenate(chunks))) if chunks else np.zeros((0, previous.bank.shape[1]))
  scores = previous.bank @ previous.memory[valid].T
  own = previous.cluster_domain[valid][None, :] == previous.domain[:, None]
  nearest = np.argmax(np.where(own.any(axis=1, keepdims=True) & ~own, -np.inf, scores), axis=1)
  position = np.full(len(previous.cluster_domain), -1, np.int64)
  position[valid] = np.arange(len(valid))
  index = np.where(previous.labels >= 0, position[previous.labels], nearest)
  return texts[index].astype(np.float32)


def _log_round(run: _Run, segment: Segment, state: rounds.RoundState) -> None:
  method = run.method
  pids = np.array([r.pid for r in method.records])
  scores = rounds.label_scores(state.labels, pids, state.domain, state.partner, method.scenario_names)
  step = segment.start
  run.writer.scalars(step, scores, "cluster/")
  clusters = int(np.sum(state.cluster_domain >= 0))
  outliers = int(np.sum(state.labels < 0))
  parts = [f"{name} {scores[f'{name}/fscore']:.3f}/{scores[f'{name}/matched_fscore']:.3f}"
           for name in method.scenario_names if f"{name}/fscore" in scores]
  matched = int(np.sum(state.partner >= 0))
  print(f"stage {segment.stage} round {segment.round} (step {step}): {clusters} clusters, {outliers} outliers, "
        f"{matched} matched; pairwise F-score (clusters / matched clusters merged): " + ", ".join(parts), flush=True)


def _run_image_round(run: _Run, segment: Segment, resumed: bool) -> None:
  if not resumed:
    if segment.stage == 3 and segment.round == 0:
      run.state = run.setup.restart_image_optimizer(run.state)
    _prepare_round(run, segment)
  labels = np.asarray(jax.device_get(run.state.model_state["round"].labels))
  seed = run.config.seed * 100003 + segment.index
  iterator = iter(pseudo_label_stream(run.config, run.method, labels, run.setup.spec, seed))
  try:
    if resumed:
      iterator.set_state(run.data_state)
    run.steps(segment, lambda: next(iterator), iterator.get_state)
  finally:
    if hasattr(iterator, "close"):
      iterator.close()


def _run_prompt_stage(run: _Run, segment: Segment, resumed: bool) -> None:
  cfg, method = run.config.itkm, run.method
  if not resumed:
    rs = _host(run.state.model_state["round"])
    bank = method.extract(run.state.params["image"], method.records, rs.domain % 2, rs.domain // 2,
                          run.config.eval.batch_size)
    run.state = run.setup.put_round(run.state, dataclasses.replace(rs, bank=bank))
  labels = np.asarray(jax.device_get(run.state.model_state["round"].labels))
  if not np.any(labels >= 0):
    raise RuntimeError("Stage II needs Stage I's pseudo labels, and its last clustering found none")
  rows = pipeline.host_rows(cfg.prompt_num_ids * cfg.prompt_num_instances, run.setup.spec)
  position = {"step": int(run.state.step)}

  def next_batch():
    position["step"] += 1
    batch = prompt_batch(labels, cfg.prompt_num_ids, cfg.prompt_num_instances, run.config.seed, position["step"])
    return {"sample": batch[rows]}

  run.steps(segment, next_batch, dict)


def train(config: ConfigDict, workdir: str, method, records: Sequence[Record] | None = None,
          show_progress: bool = True, stop_at: int | None = None) -> tuple[TrainState, dict[int, dict[str, float]]]:
  """Runs every stage to its end (or to step `stop_at`, checkpointing there), resuming from workdir.

  Returns the final state and the host metrics of every step run. `records`
  is unused: the method holds its training images.
  """
  del records
  setup = _Setup(config, method)
  total = setup.segments[-1].stop if stop_at is None else stop_at
  run = _Run(setup, workdir, total, show_progress)
  try:
    for segment in setup.segments:
      step = int(run.state.step)
      if segment.stop <= step or segment.start >= total:
        continue
      resumed = step > segment.start
      if segment.stage == 2:
        _run_prompt_stage(run, segment, resumed)
      else:
        _run_image_round(run, segment, resumed)
  finally:
    run.close()
  return run.state, run.history


def restore_state(config: ConfigDict, workdir: str, method, step: int | None = None) -> TrainState:
  """The train state of workdir's latest (or given) checkpoint, for evaluation or export."""
  setup = _Setup(config, method)
  checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"))
  try:
    state, _ = checkpointer.restore(setup.abstract, step)
  finally:
    checkpointer.close()
  return state
