"""Inference models: export a training run, load it, and encode queries and galleries.

    python -m jreid.convert export --workdir RUN --dst DIR [--step N] [--dtype bf16|fp32]
    encoder = jreid.load(DIR); features = encoder.encode_images(paths)

An inference model directory holds

    DIR/export.json   format, method, the model's config, class count, query kinds,
                      preprocessing, tokenizer kind, source run and step (written last:
                      its presence marks a complete export)
    DIR/params/       Orbax checkpoint of {'params', 'model_state'}: no optimizer state (and, where
                      the method says so, only what encoding needs: jreid.methods.export)
    DIR/tokenizer/    the method's tokenizer (CLIP BPE or BERT WordPiece), if it reads text

and nothing outside it is read. At export the method is built as it was
trained, reading the files its run's config names (a converted CLIP or BERT,
the training data), to write down what they decided: its towers'
architectures replace those file names in the config (config.model.towers)
and its tokenizer is saved (see jreid.methods.export). `load` builds the
method from the export's config and tokenizer alone: no training data, no
pretrained weights (the exported parameters replace them).

The Encoder drives the interface every method offers its evaluation
(jreid.methods.base): `query_kinds` and `encode_records(state, records,
kind, batch_size)`; its `towers` (jreid.methods.export) are what an export
rebuilds.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import shutil
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from ml_collections import ConfigDict

from data_pipelines.datasets import load_data
from data_pipelines.records import Record
from jreid import methods
from jreid.methods.export import inference_config
from jreid.models.bert import WordPieceTokenizer, load_wordpiece_tokenizer
from jreid.models.preprocess import CLIP_MEAN, CLIP_STD
from jreid.models.tokenizer import Tokenizer, load_tokenizer

FORMAT = "jreid-inference"
VERSION = 2  # 1: the config named the files the method was built from
SPEC_FILE = "export.json"
PARAMS_DIR = "params"
TOKENIZER_DIR = "tokenizer"
DTYPES = {"fp32": "float32", "bf16": "bfloat16"}
# Tokenizer kinds in export.json: (class, loader of a directory it saved).
TOKENIZERS = {"clip_bpe": (Tokenizer, load_tokenizer), "wordpiece": (WordPieceTokenizer, load_wordpiece_tokenizer)}
# Batches per unit of work (few enough that the methods' feature extraction shows no progress bar of its own).
_BATCHES_PER_CHUNK = 3

class UnsupportedQueryError(ValueError):
  """The model cannot encode queries of this kind."""


def read_run_config(workdir: str) -> ConfigDict:
  """The config a training run wrote to WORKDIR/config.json."""
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{workdir!r} is not a jreid training run: expected config.json and checkpoints/ "
                            "there, as `python -m jreid.main --workdir DIR` writes them")
  with open(path) as f:
    return ConfigDict(json.load(f))


def _restore_run(workdir: str, step: int | None) -> tuple[Any, Any, int]:
  """(params, model_state, step) of a run's checkpoint, as NumPy arrays; the optimizer state stays on disk."""
  directory = os.path.join(os.path.abspath(workdir), "checkpoints")
  if not os.path.isdir(directory):
    raise FileNotFoundError(f"no checkpoints/ in {workdir!r}: has the run saved a checkpoint yet?")
  handlers = {"state": ocp.PyTreeCheckpointHandler(), "data": ocp.JsonCheckpointHandler()}
  options = ocp.CheckpointManagerOptions(create=False)
  with ocp.CheckpointManager(directory, item_names=("state", "data"), item_handlers=handlers,
                             options=options) as manager:
    steps = manager.all_steps()
    if not steps:
      raise FileNotFoundError(f"no checkpoint in {directory}")
    step = max(steps) if step is None else step
    if step not in steps:
      raise ValueError(f"no checkpoint of step {step} in {directory}; it has steps {sorted(steps)}")
    metadata = manager.item_metadata(step)["state"]
    target = {key: jax.tree_util.tree_map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype), metadata[key])
              for key in ("params", "model_state")}
    restore_args = jax.tree_util.tree_map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), target)
    state = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
        target, restore_args=restore_args, partial_restore=True))).state
  return state["params"], state["model_state"], step


def _abstract_variables(method: Any) -> tuple[Any, Any]:
  """Shapes of (params, model_state) of the method, initialised as the trainer does."""
  images = np.zeros((2, *method.config.model.vision.image_size, 3), np.uint8)
  return jax.eval_shape(method.init, jax.random.PRNGKey(0), {"image": images})


def _shapes(tree: Any) -> dict[str, tuple[int, ...]]:
  return {jax.tree_util.keystr(path): tuple(leaf.shape) for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def infer_num_classes(config: ConfigDict, params: Any) -> int:
  """The class count `params` were built with.

  Read off the parameters whose shape follows it (1 if none does); for a
  method that accepts only its training set's identity count, that count.
  """
  try:
    one, two = (_shapes(_abstract_variables(methods.build(config, n))[0]) for n in (1, 2))
  except ValueError:
    return load_data(config.data, config.seed).num_train_ids
  got = _shapes(params)
  for key, shape in one.items():
    if shape != two[key] and key in got:
      axis = next(i for i, (a, b) in enumerate(zip(shape, two[key])) if a != b)
      return got[key][axis]
  return 1


def _check_variables(method: Any, params: Any, model_state: Any) -> None:
  """Raises ValueError unless the variables have the tree and shapes the method builds."""
  expected = _shapes(_abstract_variables(method))
  got = _shapes((params, model_state))
  problems = [f"{key} missing" for key in expected.keys() - got.keys()]
  problems += [f"{key} unexpected" for key in got.keys() - expected.keys()]
  problems += [f"{key} is {got[key]}, expected {shape}" for key, shape in expected.items()
               if key in got and got[key] != shape]
  if problems:
    raise ValueError(f"the parameters do not match the {method.config.method} model their config describes: "
                     + "; ".join(sorted(problems)[:10]))


def _set_model_dtype(node: ConfigDict, dtype: str) -> None:
  """Sets every `dtype` and `param_dtype` under a model config section."""
  for key, value in node.items():
    if isinstance(value, ConfigDict):
      _set_model_dtype(value, dtype)
    elif key in ("dtype", "param_dtype"):
      node[key] = dtype


def _cast_floats(tree: Any, dtype: str) -> Any:
  return jax.tree_util.tree_map(
      lambda x: x.astype(jnp.dtype(dtype)) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def export(workdir: str, dst: str, step: int | None = None, dtype: str = "fp32") -> dict[str, Any]:
  """Writes the inference model of a training run's latest (or given) checkpoint; returns its export.json.

  Args:
    workdir: a run directory of `python -m jreid.main` (config.json and checkpoints/).
    dst: the model directory to write; an earlier export there is replaced.
    step: the checkpoint step (default: the latest).
    dtype: 'fp32' or 'bf16': the parameters' dtype and the model's compute dtype.
  """
  config = read_run_config(workdir)
  params, model_state, step = _restore_run(workdir, step)
  num_classes = infer_num_classes(config, params)
  return save_model(dst, config, num_classes, params, model_state, dtype,
                    source={"workdir": os.path.abspath(workdir), "step": int(step)})


def save_model(dst: str, config: ConfigDict, num_classes: int, params: Any, model_state: Any, dtype: str = "fp32",
               source: dict[str, Any] | None = None) -> dict[str, Any]:
  """Writes a self-contained inference model directory of a method's variables; returns its export.json.

  The method is built from the run's config as for training (reading the
  files that config names), then again from the exported config and
  tokenizer alone, and the variables are checked against the latter.

  Args:
    dst: the model directory; an earlier export there is replaced.
    config: the run's config (config.method and config.model build the method).
    num_classes: the class count the method was built with.
    params, model_state: its variables (host or device arrays).
    dtype: 'fp32' or 'bf16': the parameters' dtype and the model's compute dtype.
    source: where the variables came from (recorded in export.json).
  """
  if dtype not in DTYPES:
    raise ValueError(f"unknown dtype {dtype!r}; choose one of {tuple(DTYPES)}")
  config = ConfigDict(config.to_dict())
  if dtype == "bf16":
    _set_model_dtype(config.model, DTYPES[dtype])
    params = _cast_floats(params, DTYPES[dtype])
  trained = methods.build(config, num_classes)
  tokenizer = trained.tokenizer
  config = inference_config(trained)
  params, model_state = trained.inference_variables(params, model_state)
  method = methods.build(config, num_classes, train_records=(), tokenizer=tokenizer)
  if method.towers != trained.towers:
    raise ValueError(f"the {config.method} method does not build its towers from config.model.towers (see "
                     f"jreid/methods/export.py): trained with {trained.towers}, rebuilt with {method.towers}")
  _check_variables(method, params, model_state)
  dst = os.path.abspath(dst)
  if os.path.isdir(dst) and os.listdir(dst) and not os.path.isfile(os.path.join(dst, SPEC_FILE)):
    raise ValueError(f"{dst!r} exists and holds no jreid export: choose an empty or new --dst")
  os.makedirs(dst, exist_ok=True)
  spec_path = os.path.join(dst, SPEC_FILE)
  if os.path.exists(spec_path):
    os.remove(spec_path)  # An interrupted re-export must not pass for a complete one.
  shutil.rmtree(os.path.join(dst, TOKENIZER_DIR), ignore_errors=True)
  tokenizer_entry = _save_tokenizer(tokenizer, dst)
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(os.path.join(dst, PARAMS_DIR), {"params": params, "model_state": model_state}, force=True)
  spec = {
      "format": FORMAT, "version": VERSION, "method": config.method, "num_classes": num_classes,
      "query_kinds": list(method.query_kinds), "dtype": DTYPES[dtype],
      "preprocessing": {
          "input": "RGB uint8 [H, W, 3], resized bilinearly to image_size; normalised inside the model",
          "image_size": list(config.model.vision.image_size), "mean": list(CLIP_MEAN), "std": list(CLIP_STD)},
      "tokenizer": tokenizer_entry,
      "source": source or {},
      "config": config.to_dict(),
  }
  with open(spec_path + ".tmp", "w") as f:
    json.dump(spec, f, indent=2)
  os.replace(spec_path + ".tmp", spec_path)
  return spec


def _save_tokenizer(tokenizer: Any, dst: str) -> dict[str, str] | None:
  """Writes the tokenizer into dst/tokenizer/; returns its export.json entry (None without a tokenizer)."""
  if tokenizer is None:
    return None
  kind = next((kind for kind, (cls, _) in TOKENIZERS.items() if isinstance(tokenizer, cls)), None)
  if kind is None:
    raise ValueError(f"cannot export a tokenizer of type {type(tokenizer).__name__}; exported kinds: "
                     + ", ".join(f"{cls.__name__} ({kind})" for kind, (cls, _) in TOKENIZERS.items()))
  tokenizer.save(os.path.join(dst, TOKENIZER_DIR))
  return {"kind": kind, "path": TOKENIZER_DIR}


def read_tokenizer(directory: str, spec: dict[str, Any]) -> Any:
  """The tokenizer of an exported model directory (None if its method reads no text)."""
  entry = spec["tokenizer"]
  if entry is None:
    return None
  return TOKENIZERS[entry["kind"]][1](os.path.join(directory, entry["path"]))


def build_method(directory: str, spec: dict[str, Any]) -> Any:
  """The method of an exported model directory, built from its config and tokenizer alone."""
  return methods.build(ConfigDict(spec["config"]), spec["num_classes"], train_records=(),
                       tokenizer=read_tokenizer(directory, spec))


def read_spec(directory: str) -> dict[str, Any]:
  """The export.json of an inference model directory, with a clear error for any other directory."""
  path = os.path.join(directory, SPEC_FILE)
  if os.path.isfile(path):
    with open(path) as f:
      spec = json.load(f)
    if spec.get("format") != FORMAT:
      raise ValueError(f"{path} is not a {FORMAT} file")
    if spec.get("version") != VERSION:
      raise ValueError(f"{path} is a {FORMAT} file of version {spec.get('version')}, expected {VERSION}: "
                       "export the run again with `python -m jreid.convert export`")
    return spec
  if os.path.isdir(os.path.join(directory, "checkpoints")):
    hint = (f"it is a training run: export it first with `python -m jreid.convert export --workdir {directory} "
            "--dst MODEL_DIR`")
  elif os.path.isfile(os.path.join(directory, "model_config.json")):
    hint = "it holds converted CLIP weights (initial weights for training, config.model.init), not a trained model"
  elif not os.path.isdir(directory):
    hint = "no such directory"
  else:
    hint = f"expected {SPEC_FILE} and {PARAMS_DIR}/ there, as `python -m jreid.convert export --dst DIR` writes them"
  raise FileNotFoundError(f"{directory!r} is not an exported jreid model: {hint}")


def fingerprint(spec: dict[str, Any]) -> str:
  """A short hash naming the model an export holds (features of different fingerprints do not compare)."""
  return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


class Variables(NamedTuple):
  """The part of a train state an export keeps (and a method's encode_records reads)."""

  params: Any
  model_state: Any


def load_variables(directory: str) -> Variables:
  """The variables of an exported model, as NumPy arrays."""
  path = os.path.join(directory, PARAMS_DIR)
  with ocp.PyTreeCheckpointer() as checkpointer:
    metadata = checkpointer.metadata(path).item_metadata
    target = jax.tree_util.tree_map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype), metadata)
    restore_args = jax.tree_util.tree_map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), target)
    variables = checkpointer.restore(path, args=ocp.args.PyTreeRestore(target, restore_args=restore_args))
  return Variables(variables["params"], variables.get("model_state", {}))


class Encoder:
  """An exported model, encoding queries and gallery images in fixed-size batches (the last one padded).

  Work is split into chunks of a few batches, run concurrently on the given
  devices (each holds a copy of the parameters; each query kind compiles once
  per device), so that image decoding on host threads keeps the devices busy.
  Features are float32 NumPy arrays [N, D], L2-normalised: a query's scores
  are dot products with gallery `encode_images` features.

  Attributes:
    directory: the model directory. spec: its export.json. method: the method object.
    query_kinds: the query kinds it encodes. image_size: (H, W) images are resized to.
    batch_size: rows per compiled batch. devices: where it runs. workers: chunks encoded at once.
  """

  def __init__(self, directory: str, batch_size: int = 64, devices: Sequence[jax.Device] | None = None,
               workers: int | None = None):
    self.directory = os.path.abspath(directory)
    self.spec = read_spec(self.directory)
    self.method = build_method(self.directory, self.spec)
    self.query_kinds = tuple(self.spec["query_kinds"])
    self.image_size = tuple(self.spec["preprocessing"]["image_size"])
    self.batch_size = batch_size
    self.devices = list(devices or jax.local_devices())
    self.workers = workers or max(len(self.devices), (os.cpu_count() or 1) // 4)
    host = load_variables(self.directory)
    self._states = [jax.device_put(host, device) for device in self.devices]

  @property
  def fingerprint(self) -> str:
    return fingerprint(self.spec)

  def check_kind(self, kind: str) -> None:
    """Raises UnsupportedQueryError unless the model encodes queries of `kind`."""
    if kind not in self.query_kinds:
      raise UnsupportedQueryError(
          f"the {self.spec['method']} model in {self.directory} cannot encode {kind} queries; "
          f"it encodes {', '.join(self.query_kinds)} queries")

  def encode_images(self, paths: Sequence[str], on_chunk: Callable[[int], None] | None = None) -> np.ndarray:
    """Gallery (and image-query) features of image files; `on_chunk(n)` reports progress."""
    return self.encode("image", [Record(os.fspath(p), -1, -1) for p in paths], on_chunk)

  def encode_sketches(self, paths: Sequence[str]) -> np.ndarray:
    return self.encode("sketch", [Record(os.fspath(p), -1, -1, modality="sketch") for p in paths])

  def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
    return self.encode("text", [Record("", -1, -1, captions=(text,)) for text in texts])

  def encode_image_instructions(self, paths: Sequence[str], instructions: Sequence[str]) -> np.ndarray:
    if len(paths) != len(instructions):
      raise ValueError(f"{len(paths)} images but {len(instructions)} instructions")
    return self.encode("image+instruction", [Record(os.fspath(p), -1, -1, instruction=text)
                                             for p, text in zip(paths, instructions)])

  def encode(self, kind: str, records: Sequence[Record],
             on_chunk: Callable[[int], None] | None = None) -> np.ndarray:
    """Features [N, D] of N >= 1 queries of `kind` given as records (path, captions, instruction, template).

    Raises:
      UnsupportedQueryError: the model does not encode `kind`.
      data_pipelines.images.ImageError: naming an image file that cannot be read.
    """
    self.check_kind(kind)
    size = self.batch_size * _BATCHES_PER_CHUNK
    chunks = [records[i:i + size] for i in range(0, len(records), size)]
    if not chunks:
      raise ValueError("nothing to encode")

    def run(index: int) -> np.ndarray:
      state = self._states[index % len(self._states)]
      features = np.asarray(self.method.encode_records(state, chunks[index], kind, self.batch_size), np.float32)
      if on_chunk is not None:
        on_chunk(len(chunks[index]))
      return features

    with concurrent.futures.ThreadPoolExecutor(min(self.workers, len(chunks))) as pool:
      return np.concatenate(list(pool.map(run, range(len(chunks)))))


def load(directory: str, batch_size: int = 64, devices: Sequence[jax.Device] | None = None,
         workers: int | None = None) -> Encoder:
  """The Encoder of an exported model directory (`python -m jreid.convert export` writes one).

  Args:
    directory: the model directory.
    batch_size: rows per compiled batch.
    devices: where to run (default: every local device).
    workers: chunks encoded at once, each decoding its images on its own
      threads (default: one per device, or a quarter of the host's cores if more).
  """
  return Encoder(directory, batch_size, devices, workers)
