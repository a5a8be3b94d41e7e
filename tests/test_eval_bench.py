"""`python -m jreid.bench eval` on the smoke-test size."""

from jreid.bench import __main__ as bench


def test_eval_bench_prints_a_table_with_agreeing_peers(capsys):
  bench.main(["eval", "--sizes", "tiny", "--repeats", "1",
              "--peer-repeats", "1"])
  lines = capsys.readouterr().out.splitlines()
  rows = [line for line in lines if line.startswith("| jreid")
          or line.startswith("| NumPy")]
  assert len(rows) == 2
  assert len({row.split("|")[7] for row in rows}) == 1  # the same mAP
