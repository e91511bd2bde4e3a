"""Benchmarks of batchscore against baselines measured in the same run: ``python -m bench [--quick]``.

One module per figure of the benchmarks issue (``p1_throughput`` ... ``p7_first_result``), a runner that starts
one server (``server_proc``) and measures each figure next to its baseline, back to back, and ``report``, which
writes ``latest.json``, ``latest.md`` and ``throughput.png``. Benchmarks print and record; they never assert a
time.
"""
