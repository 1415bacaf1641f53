"""`make bench`: the benchmark harness (bench/run.py is the entry)."""
