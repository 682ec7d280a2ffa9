import os

import pytest

SERVICES_ENABLED = os.getenv("TEST_SERVICES") == "1"


def pytest_collection_modifyitems(config, items):
    # Service tests must run in CI (TEST_SERVICES=1 is set there, and a missing service then
    # fails the run); on a laptop without them they are skipped, loudly.
    if SERVICES_ENABLED:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL/Redis: run with CI=true or TEST_SERVICES=1")
    for item in items:
        if "services" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_storage(settings, tmp_path):
    """Each test gets its own model root and artefact folder."""
    model_root = tmp_path / "models"
    model_root.mkdir()
    settings.MODEL_ROOTS = [model_root.resolve()]
    settings.ARTIFACTS_DIR = (tmp_path / "artifacts").resolve()
    return model_root


@pytest.fixture(autouse=True)
def _rare_heartbeats_inside_test_transactions(request, settings):
    """A run's heartbeat thread has its own database connection. Inside a test's transaction it cannot see
    the run's row, takes the run for cancelled and stops it, so a run executed in-process that lasts longer
    than one heartbeat (a slow machine) would fail. Such tests beat rarely; transactional tests, and tests
    that set their own interval, keep theirs."""
    marker = request.node.get_closest_marker("django_db")
    if marker is not None and not marker.kwargs.get("transaction") and "transactional_db" not in request.fixturenames:
        settings.RUN_HEARTBEAT_S = 3600


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts in the default language: a request in Korean activates it for the thread, and
    Django leaves it active after the response."""
    from django.utils import translation

    yield
    translation.deactivate()


@pytest.fixture
def model_root(settings):
    return settings.MODEL_ROOTS[0]


@pytest.fixture(scope="session")
def tiny_model_template(tmp_path_factory):
    """One tiny model built per session; tests copy it into their own model root."""
    from leaderboard.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-llama")


@pytest.fixture
def tiny_model(tiny_model_template, model_root):
    import shutil

    return shutil.copytree(tiny_model_template, model_root / "tiny-llama")


@pytest.fixture(scope="session")
def mini_mirror(tmp_path_factory):
    """Every dataset of the real mirror cut to a few rows (test splits to 3, others to 30), plus a
    SYNTHETIC Rowan/hellaswag: a full, rankable suite run on a tiny model then takes seconds."""
    from pathlib import Path

    from django.conf import settings

    from tests.mirror_fixtures import mirror_build

    real = Path(settings.DATASET_MIRROR)
    if not (real / "allenai" / "ai2_arc").is_dir():
        pytest.skip(f"the dataset mirror is not at {real}")
    mirror = tmp_path_factory.mktemp("mini_mirror")
    mirror_build(mirror, source=real, rows=lambda parquet: 3 if parquet.name.startswith("test") else 30)
    return mirror


@pytest.fixture
def suite_worker(settings, mini_mirror):
    """A real Celery worker process, taking runs from the broker and evaluating suites on the cut-down mirror."""
    import signal

    from tests.workers import WorkerProcess, queues_purge

    settings.DATASET_MIRROR = mini_mirror
    queues_purge()
    process = WorkerProcess("suite-worker")
    yield process
    process.kill(signal.SIGTERM)


@pytest.fixture(scope="session")
def suite_data_sources():
    """``{suite name: (sources, column leaves)}`` from lm-eval's real task index, read once per session
    (indexing takes seconds): what ``mirror_verify`` checks a mirror for."""
    from django.conf import settings

    from leaderboard.harness.mirror import _suite_column_leaves, _suite_sources
    from leaderboard.harness.suites import suite_list

    return {
        suite.name: (
            _suite_sources(suite, settings.HARNESS_TASKS_DIR),
            _suite_column_leaves(suite, settings.HARNESS_TASKS_DIR),
        )
        for suite in suite_list()
    }


@pytest.fixture
def mirror_checked(suite_data_sources):
    """``mirror_checked(mirror, *suite_names)``: check those suites (default all) against ``mirror`` with the real
    ``mirror_verify`` (rows not counted) and save the checks, as ``manage.py mirror_verify`` does."""
    from leaderboard.harness.mirror import mirror_verify
    from leaderboard.harness.suites import suite_get
    from leaderboard.mirror_reports import mirror_check_save

    def check(mirror, *suite_names):
        reports = {}
        for name in suite_names or tuple(suite_data_sources):
            suite = suite_get(name)
            sources, leaves = suite_data_sources[name]
            reports[name] = mirror_verify(mirror, suite, sources=sources, column_leaves=leaves, count_rows=False)
            mirror_check_save(report=reports[name], suite=suite)
        return reports

    return check


@pytest.fixture
def mirror_lacking_hellaswag(settings, tmp_path):
    """This test's DATASET_MIRROR: the shared mirror's repos without Rowan/hellaswag (symlinked; add to it freely)."""
    from pathlib import Path

    from tests.mirror_fixtures import mirror_without

    real = Path(settings.DATASET_MIRROR)
    if not (real / "allenai" / "ai2_arc").is_dir():
        pytest.skip(f"the dataset mirror is not at {real}")
    mirror = mirror_without(tmp_path / "mirror", source=real)
    settings.DATASET_MIRROR = mirror.resolve()
    return mirror.resolve()
