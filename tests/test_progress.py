"""Progress output (jreid/progress.py): plain lines in a log, warnings above the bar on a terminal."""

import logging
import os
import re
import subprocess
import sys
import warnings

from jreid.progress import Progress

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_off_a_terminal_a_line_every_tenth_and_no_redraws(capsys):
  with Progress(1000, "train", "step", terminal=False) as progress:
    for step in range(1000):
      progress.set_postfix(loss=f"{1 / (step + 1):.3f}")
      progress.update()
  err = capsys.readouterr().err
  assert "\r" not in err
  lines = err.splitlines()
  assert len(lines) == 10
  assert lines[0].startswith("train: 100/1000 step (10%), loss=0.010")
  assert lines[-1].startswith("train: 1000/1000 step (100%), loss=0.001")


def test_off_a_terminal_the_end_is_printed_once(capsys):
  with Progress(7, "features", "batch", initial=2, terminal=False) as progress:
    progress.update(5)
  lines = capsys.readouterr().err.splitlines()
  assert len(lines) == 1 and lines[0].startswith("features: 7/7 batch (100%)")


def test_on_a_terminal_warnings_and_log_records_print_above_the_bar(capsys):
  handler = logging.StreamHandler(sys.stderr)
  logging.getLogger().addHandler(handler)
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("always")
      # Python's default display (pytest records warnings instead): onto stderr as it is then.
      warnings.showwarning = lambda message, category, filename, lineno, *_: sys.stderr.write(
          warnings.formatwarning(message, category, filename, lineno))
      with Progress(10, "train", "step", terminal=True) as progress:
        progress.update(5)
        warnings.warn("a python warning")
        logging.getLogger().warning("a log record")
        progress.write("a line of ours", file=sys.stderr)
        progress.update(5)
  finally:
    logging.getLogger().removeHandler(handler)
  err = capsys.readouterr().err
  assert "%|" in err  # a bar was drawn
  for text in ("UserWarning: a python warning", "a log record", "a line of ours"):
    on_screen_before = re.split(r"[\r\n]", err[:err.index(text)])[-1]  # what precedes it on its terminal line
    assert "%|" not in on_screen_before, (text, on_screen_before)


def test_a_run_redirected_to_a_file_has_no_redraws_and_few_lines(tmp_path):
  log = tmp_path / "log.txt"
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu", JREID_DATA_DIR=str(tmp_path / "data"))
  with open(log, "w") as out:
    done = subprocess.run([sys.executable, "-m", "jreid.main", "--config=configs/image_reid.py:smoke",
                           f"--workdir={tmp_path / 'run'}", "--config.train.num_steps=40",
                           "--config.train.checkpoint_every=40", "--config.eval.tasks=('traditional',)"],
                          cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=300)
  text = log.read_text()
  assert done.returncode == 0, text[-3000:]
  assert "\r" not in text
  train_lines = [line for line in text.splitlines() if line.startswith("train: ")]
  assert len(train_lines) == 10 and train_lines[-1].startswith("train: 40/40 step (100%)")
  assert "evaluating traditional (1/1)" in text
  assert len(text.splitlines()) < 40, text
