"""`python -m jreid.bench data`: the report's rows, and timed runs that outlast the workers' buffers."""

from jreid.bench import __main__ as bench
from jreid.bench import data


def test_data_bench_prints_a_row_per_format_and_stage(capsys):
  bench.main(["data", "--num-images", "64", "--batches", "2", "--repeats", "1", "--workers", "0,1",
              "--formats", "jpeg"])
  rows = [line.split("|") for line in capsys.readouterr().out.splitlines() if line.startswith("| JPEG")]
  assert [(row[2].strip(), row[3].strip()) for row in rows] == [
      ("decode", "main"), ("decode + augment", "main"), ("pipeline", "main, 1 thread"),
      ("pipeline", "1 worker")]
  assert all(float(row[4].replace(",", "")) > 0 for row in rows)


def test_a_timed_pipeline_run_takes_at_least_eight_batches_per_worker(tmp_path, monkeypatch):
  records = data.write_images(tmp_path, "jpeg", 64)
  timed = []

  def best_rates(step, images_per_step, repeats):
    timed.append(images_per_step)
    return 1.0, 1.0

  monkeypatch.setattr(data, "_best_rates", best_rates)
  data._pipeline(records, workers=0, batches=3, repeats=1)
  data._pipeline(records, workers=2, batches=3, repeats=1)
  assert timed == [3 * 64, 2 * data.BATCHES_PER_WORKER * 64]
