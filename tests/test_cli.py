"""User mistakes print one line and --help exits 0 (jreid/cli.py)."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _main(*args):
  env = dict(os.environ, PYTHONPATH=ROOT)
  env.pop("JREID_TRACEBACK", None)
  return subprocess.run([sys.executable, "-m", "jreid.main", *args], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=120)


def test_mistyped_key_prints_hint_on_one_line():
  done = _main("--config=configs/unified.py", "--config.trian.num_steps=1")
  assert done.returncode != 0
  lines = done.stderr.strip().splitlines()
  assert len(lines) == 1 and 'Did you mean "train"' in lines[0] and "Traceback" not in done.stderr


def test_help_exits_zero_and_names_overrides_and_presets():
  done = _main("--help")
  assert done.returncode == 0
  assert "--config.KEY=VALUE" in done.stdout and "smoke" in done.stdout and "JREID_TRACEBACK" in done.stdout


def _tool(module, *args):
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
  env.pop("JREID_TRACEBACK", None)
  return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=120)


def test_search_and_convert_mistakes_print_one_line(tmp_path):
  (tmp_path / "run").mkdir()
  (tmp_path / "run" / "config.json").write_text("{}")
  cases = [
      (("jreid.search", "index", "--model", str(tmp_path), "--images", str(tmp_path / "missing"), "--out",
        str(tmp_path / "index")), "is not an exported jreid model"),
      (("jreid.search", "query", "--index", str(tmp_path), "--text", "a red coat"), "is not an index"),
      (("jreid.convert", "export", "--workdir", str(tmp_path / "missing"), "--dst", str(tmp_path / "model")),
       "is not a jreid training run"),
      (("jreid.convert", "export", "--workdir", str(tmp_path / "run"), "--dst", str(tmp_path / "model")),
       "no checkpoints/ in"),
      (("jreid.clip_from_run", "--workdir", str(tmp_path), "--dst", str(tmp_path / "clip")),
       "is not a jreid training run"),
  ]
  for args, message in cases:
    done = _tool(*args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, (args, done.stderr[-2000:])
    assert len(lines) == 1 and message in lines[0] and "JREID_TRACEBACK=1" in lines[0], (args, done.stderr[-2000:])
