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
