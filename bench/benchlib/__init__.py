"""The benchmark harness behind bench/run.py: environments, runs, statistics and reports."""
