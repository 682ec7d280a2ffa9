"""Settings for worker processes started by tests: the real settings, with the scripted executor."""

from config.settings import *  # noqa: F403

RUN_EXECUTORS = {**RUN_EXECUTORS, "benchmark": "tests.executors.scripted"}  # noqa: F405
