"""The unified model (configs/unified.py): nine tasks, shared image tower, N-task dynamic weighting, fusion."""

import dataclasses
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import unified as unified_config
from data_pipelines import mixing
from data_pipelines.datasets import training_records
from jreid import losses, methods
from jreid.eval import tasks as eval_tasks
from jreid.methods.instruct import kinds
from jreid.methods.instruct.net import InstructNet
from jreid.train import loop


@pytest.fixture(scope="module")
def method(tiny):
  config = unified_config.get_config("smoke")
  return methods.build(config, tiny.num_train_ids, training_records(tiny, config.data.train_modalities))


@pytest.fixture(scope="module")
def batch(method, tiny):
  """One batch with one identity of each of the nine tasks."""
  config = method.config
  spec = dataclasses.replace(loop.batch_spec(config), num_ids=len(config.data.tasks))
  records = training_records(tiny, config.data.train_modalities)
  return {k: jnp.asarray(v) for k, v in
          next(iter(mixing.mixed_dataset(method.train_tasks(records, spec), "mixed", config.seed))).items()}


def test_task_weights_reduce_to_unireid_for_two_tasks():
  rng = np.random.default_rng(0)
  loss_a, loss_b = rng.uniform(0.05, 3, 16), rng.uniform(0.05, 3, 16)
  w_a, w_b = losses.task_aware_weights(jnp.asarray(loss_a), jnp.asarray(loss_b))
  both = jax.vmap(lambda a, b: losses.task_weights(jnp.exp(-jnp.stack([a, b])), jnp.ones(2, bool)))(
      jnp.asarray(loss_a), jnp.asarray(loss_b))
  np.testing.assert_allclose(np.asarray(both), np.stack([w_a, w_b], 1), rtol=1e-5)


def test_task_weights_of_three_tasks_by_hand():
  p = np.array([0.2, 0.5, 0.8])
  harmonic = 3 / np.sum(1 / p)
  expected = [(0.65) * harmonic, (0.5) * harmonic, (0.35) * harmonic]  # mean of the two others' p
  np.testing.assert_allclose(losses.task_weights(jnp.asarray(p), jnp.ones(3, bool)), expected, rtol=1e-6)
  # A task not seen yet gets no weight and leaves the others as if it did not exist.
  unseen = losses.task_weights(jnp.asarray([0.2, 0.5, 0.0]), jnp.asarray([True, True, False]))
  pair = losses.task_weights(jnp.asarray([0.2, 0.5]), jnp.ones(2, bool))
  np.testing.assert_allclose(unseen, [*pair, 0.0], rtol=1e-6)


def test_update_confidence_by_hand():
  confidence, seen = jnp.asarray([0.5, 0.0, 0.3]), jnp.asarray([True, False, True])
  task = jnp.asarray([0, 0, 1, 1, 1])
  row_loss = jnp.asarray([1.0, 3.0, 0.5, 0.5, 2.0])
  new, new_seen = losses.update_confidence(confidence, seen, task, row_loss, jnp.ones(5, bool), 0.9)
  np.testing.assert_allclose(new, [0.9 * 0.5 + 0.1 * np.exp(-2.0), np.exp(-1.0), 0.3], rtol=1e-6)
  assert list(np.asarray(new_seen)) == [True, True, True]


def test_every_task_has_rows_of_its_kind(method, batch):
  names = method.config.data.tasks
  assert set(names) == set(kinds.ALL_TASKS)
  row_kinds, task = np.asarray(batch["instruction_kind"]), np.asarray(batch["task"])
  expected = {"traditional": {kinds.TEXT}, "clothes_changing": {kinds.TEXT},
              "visible_infrared": {kinds.TEXT}, "text": {kinds.CAPTION},
              "clothes_template": {kinds.TEMPLATE}, "language_instructed": {kinds.TEXT},
              "cross_resolution": {kinds.NONE}, "sketch": {kinds.NONE},
              "text+sketch": {kinds.NONE, kinds.FUSION}}
  for t, name in enumerate(names):
    assert set(row_kinds[task == t]) <= expected[name] and len(row_kinds[task == t]), name
  assert {name: set(k) for name, k in kinds.ROW_KINDS.items()} == expected  # what step_parts reads


def test_step_parts_by_hand():
  parts = kinds.step_parts
  assert parts(["cross_resolution"]) == parts(["sketch"]) == kinds.StepParts(False, False, False, False)
  assert parts(["traditional"]) == kinds.StepParts(text=True, template=False, edit=True, image_text=False)
  assert parts(["text"]) == kinds.StepParts(text=True, template=False, edit=False, image_text=True)
  assert parts(["clothes_template"]) == kinds.StepParts(text=False, template=True, edit=True, image_text=False)
  assert parts(["text+sketch"]) == kinds.StepParts(text=True, template=False, edit=False, image_text=False)
  assert parts(kinds.ALL_TASKS) == kinds.StepParts()


def _task_batches(method, tiny):
  """One per_batch-mode batch of each task, as the trainer's host batches."""
  config, records = method.config, training_records(tiny, method.config.data.train_modalities)
  for i, task in enumerate(method.train_tasks(records, loop.batch_spec(config))):
    batch = next(iter(mixing.mixed_dataset([task], "per_batch", config.seed)))
    yield task.name, {**batch, "task": np.full_like(batch["task"], i)}


def test_each_tasks_step_variant_gives_the_full_networks_losses_and_gradients(method, batch, tiny):
  """A per_batch-mode batch skips the parts its task does not use (step_variant); its loss terms and gradients
  are those of the whole network."""
  params, model_state = method.init(jax.random.key(0), batch)
  # Moved off the initial values, so that the editing gates are open and every part's gradient counts.
  params = jax.tree.map(lambda p: p + 0.05 * jax.random.normal(jax.random.key(2), p.shape, p.dtype), params)
  assert method.config.data.mix_mode == "per_batch"
  loss_and_grad = jax.jit(jax.value_and_grad(lambda p, b, variant: method.loss(p, model_state, b, jax.random.key(1),
                                                                              variant=variant), has_aux=True),
                          static_argnames="variant")  # one compile per variant (None: the whole network)
  seen = set()
  for name, host in _task_batches(method, tiny):
    variant = method.step_variant(host)
    assert variant == kinds.step_parts([name]), name
    seen.add(variant)
    device = {k: jnp.asarray(v) for k, v in host.items()}
    (_, (full, _)), full_grads = loss_and_grad(params, device, variant=None)
    (_, (part, _)), part_grads = loss_and_grad(params, device, variant=variant)
    assert set(full) == set(part), name
    for term in full:
      np.testing.assert_allclose(np.asarray(part[term]), np.asarray(full[term]), rtol=2e-4, atol=2e-5,
                                 err_msg=f"{name}: {term}")
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(full_grads), jax.tree_util.tree_leaves(part_grads)):
      np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=2e-3, atol=2e-5,
                                 err_msg=f"{name}: {jax.tree_util.keystr(path)}")
  assert len(seen) == 5  # the nine tasks need five distinct steps


def test_training_with_step_variants_follows_the_full_step(tiny, tmp_path):
  """Through the trainer, per_batch-mode training with one compiled step per variant gives the losses of
  training the whole network on every batch."""
  records = training_records(tiny, unified_config.get_config("smoke").data.train_modalities)
  histories = []
  for name, variants in (("full", False), ("variants", True)):
    config = unified_config.get_config("smoke")
    config.train.update(num_steps=6, checkpoint_every=100, step_variants=variants)
    built = methods.build(config, tiny.num_train_ids, records)
    assert [p.variant is not None for p in built.phases(loop.batch_spec(config), {})] == [variants]
    histories.append(loop.train(config, str(tmp_path / name), built, show_progress=False)[1])
  full, parts = histories
  assert sorted(full) == sorted(parts) == list(range(1, 7))
  for step in full:
    np.testing.assert_allclose(parts[step]["loss"], full[step]["loss"], rtol=1e-3, err_msg=f"step {step}")


def test_one_image_tower_and_the_sum_fusion(method, batch):
  params, model_state = method.init(jax.random.key(0), batch)
  assert "template" not in params  # clothes templates go through the image tower
  variables = {"params": params, **model_state}
  net = method.net
  out = net.apply(variables, batch["image"], batch["instruction"], batch["template"], batch["instruction_kind"])
  kind = np.asarray(batch["instruction_kind"])
  image = net.apply(variables, batch["image"], batch["instruction"], batch["template"],
                    jnp.full_like(batch["instruction_kind"], kinds.NONE), method=InstructNet.encode_queries)
  text = net.apply(variables, batch["instruction"], method=lambda m, t: m.encode_text(t)[2])
  fusion = kind == kinds.FUSION
  assert fusion.any()
  # FUSION rows: the sketch's embedding plus its caption's (the gates are closed at init, so no editing).
  unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
  raw_image = np.asarray(out.feature) - np.where(fusion[:, None], np.asarray(text), 0)
  np.testing.assert_allclose(unit(raw_image), np.asarray(image), atol=1e-5)
  # Template rows: the instruction embedding is the image tower's embedding of the template.
  rows = kind == kinds.TEMPLATE
  template = net.apply(variables, batch["template"][rows], method=InstructNet.encode_template)
  np.testing.assert_allclose(np.asarray(out.instruction.embedding)[rows], np.asarray(template.embedding), atol=1e-5)


def test_dynamic_weights_scale_each_rows_losses(method, batch):
  params, model_state = method.init(jax.random.key(0), batch)
  total, (terms, updates) = method.loss(params, model_state, batch, jax.random.key(1))
  cfg = method.config.loss
  config = method.config.copy_and_resolve_references()
  config.loss.dynamic = False
  fixed = methods.build(config, method.identities.__len__(), method.train_set)
  _, (fixed_terms, _) = fixed.loss(params, {k: v for k, v in model_state.items() if k != "task_stats"}, batch,
                                   jax.random.key(1))
  # The first batch sets each task's confidence to exp(-its mean row loss) (identity CE; InfoNCE for text).
  out = method.net.apply({"params": params, **model_state}, batch["image"], batch["instruction"], batch["template"],
                         batch["instruction_kind"], train=True, mutable=["batch_stats"])[0]
  labels, kind, task = (np.asarray(batch[k]) for k in ("identity", "instruction_kind", "task"))
  logits = np.asarray(out.logits, np.float64)
  log_p = logits - logits.max(1, keepdims=True)
  log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
  n = logits.shape[1]
  smooth = (1 - cfg.label_smoothing) * np.eye(n)[labels] + cfg.label_smoothing / n
  ce = -(smooth * log_p).sum(1)
  reid = kind != kinds.CAPTION
  num_tasks = len(method.config.data.tasks)
  confidence = np.asarray(updates["task_stats"]["confidence"])
  for t in range(num_tasks):
    if reid[task == t].all():
      np.testing.assert_allclose(confidence[t], np.exp(-ce[task == t].mean()), rtol=1e-4)
  p = confidence
  w = np.array([(np.delete(p, t).mean()) * num_tasks / np.sum(1 / p) for t in range(num_tasks)])
  weights = cfg.dynamic_alpha * (1 + w[task]) ** cfg.dynamic_gamma
  assert weights.max() > 1.0001  # the weighting is not vacuous
  np.testing.assert_allclose(float(terms["id"]), np.sum(weights * ce * reid) / reid.sum(), rtol=1e-4)
  np.testing.assert_allclose(float(fixed_terms["id"]), np.sum(ce * reid) / reid.sum(), rtol=1e-4)


def test_missing_modality_tasks(tiny):
  chosen = {name: tiny.tasks[name] for name in ("text+sketch", "clothes_template", "traditional")}
  variants = eval_tasks.missing_modality_tasks(chosen)
  assert set(variants) == {"text+sketch / no text", "text+sketch / no sketch", "clothes_template / no instruction"}
  parent, no_text = variants["text+sketch / no text"]
  assert parent == "text+sketch" and no_text.query_kind == "sketch" and all(not q.captions for q in no_text.query)
  assert variants["text+sketch / no sketch"][1].query_kind == "text"
  bare = variants["clothes_template / no instruction"][1]
  assert bare.query_kind == "image" and all(not q.template and not q.instruction for q in bare.query)
  assert bare.gallery == tiny.tasks["clothes_template"].gallery
  results = {"a": {"protocol": "standard", "queries": 1, **{k: 0.5 for k in eval_tasks.REPORTED},
                   "chance_mAP": 0.1, "chance_rank1": 0.1},
             "a / no text": {"protocol": "standard", "queries": 1, **{k: 0.1 for k in eval_tasks.REPORTED},
                             "chance_mAP": 0.1, "chance_rank1": 0.1, "variant_of": "a"}}
  table = eval_tasks.summary_table(results)
  mean_row = next(line for line in table.splitlines() if line.startswith("| **mean**"))
  assert "| 50.0 |" in mean_row and "a / no text" in table.split("mean")[1]


_PARSE_RATIOS = """
import json
from absl import app, flags
from ml_collections import config_flags
config_flags.DEFINE_config_file("config")
app.run(lambda _: print(json.dumps(dict(flags.FLAGS.config.data.task_ratios))))
"""


def test_every_task_ratio_can_be_set_by_a_flag(tiny):
  """config.data.task_ratios keys are flag names (no '+'): the command line sets them as jreid.main parses it,
  and the mix uses them."""
  flags = ["--config=" + unified_config.__file__ + ":smoke", "--config.data.task_ratios.text_sketch=3.0",
           "--config.data.task_ratios.sketch=0.5"]
  parsed = subprocess.run([sys.executable, "-c", _PARSE_RATIOS, *flags], capture_output=True, text=True, check=True,
                          cwd=os.path.dirname(os.path.dirname(unified_config.__file__)))
  config = unified_config.get_config("smoke")
  config.data.task_ratios.update(json.loads(parsed.stdout.strip().splitlines()[-1]))
  spec = dataclasses.replace(loop.batch_spec(config), num_ids=len(config.data.tasks))
  records = training_records(tiny, config.data.train_modalities)
  built = methods.build(config, tiny.num_train_ids, records)
  ratios = {task.name: task.ratio for task in built.train_tasks(records, spec)}
  assert ratios["text+sketch"] == 3.0 and ratios["sketch"] == 0.5 and ratios["traditional"] == 1.0
