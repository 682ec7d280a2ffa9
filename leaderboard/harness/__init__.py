"""lm-evaluation-harness adapter: benchmark suites, the offline dataset mirror, and the run executor."""
