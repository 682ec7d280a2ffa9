"""The submit form: quantized precisions only where a worker can run them, delta weights, the form's
idempotency token, the warning when the broker is down, and the new-evaluation page's bad parameters."""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import timedelta
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from leaderboard.harness.adapter import model_arguments
from leaderboard.models import RegisteredModel
from leaderboard.tiny_model import build_tiny_model
from runs.models import EvaluationRun, WorkerNode
from runs.selectors import worker_capability_available
from tests.delta_models import delta_folder_make
from tests.factories import user_create

pytestmark = pytest.mark.django_db

NO_WORKER = "No GPU worker that can run"
BROKER_DOWN = "it will be sent to the workers as soon as the queue is reachable again"


@pytest.fixture
def user(client):
    user = user_create()
    client.force_login(user)
    return user


def _post(client, path, **fields):
    data = {
        "storage_path": str(path),
        "precision": "float32",
        "weight_type": "original",
        "model_type": "pretrained",
        "suite": "openllm_v1",
        **fields,
    }
    return client.post(reverse("leaderboard:submit"), data)


def _worker(name="gpu-1", *, seen_s_ago=5, queues=("gpu",), **capabilities):
    now = timezone.now()
    return WorkerNode.objects.create(
        hostname=name,
        queues=list(queues),
        capabilities=capabilities,
        started_at=now - timedelta(hours=1),
        last_seen_at=now - timedelta(seconds=seen_s_ago),
    )


# --- 8-bit, 4-bit and GPTQ -----------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["8bit", "4bit", "GPTQ"])
@pytest.mark.parametrize(
    "worker",
    [
        None,
        {"cuda": True, "bitsandbytes": True, "gptq": True, "seen_s_ago": 600},  # stale
        {"cuda": True, "bitsandbytes": False, "gptq": False},  # lacks the library
        {"cuda": False, "bitsandbytes": True, "gptq": True},  # no GPU
        {"cuda": True, "bitsandbytes": True, "gptq": True, "queues": ("cpu",)},  # not a gpu-queue worker
    ],
    ids=["none", "stale", "no-library", "no-cuda", "cpu-queue"],
)
def test_quantized_precision_is_refused_before_anything_is_saved(client, user, tiny_model, precision, worker):
    if worker is not None:
        _worker(**worker)
    response = _post(client, tiny_model, precision=precision)
    assert response.status_code == 200 and NO_WORKER in unescape(response.content.decode())
    assert not RegisteredModel.objects.exists() and not EvaluationRun.objects.exists()


@pytest.mark.parametrize(
    ("precision", "quantization", "model_args"),
    [
        ("8bit", "8bit", {"load_in_8bit": True}),
        ("4bit", "4bit", {"load_in_4bit": True, "bnb_4bit_compute_dtype": "float16"}),
        ("GPTQ", "gptq", {"gptqmodel": True}),
    ],
)
def test_quantized_precision_is_queued_when_a_capable_worker_is_live(
    client, user, tiny_model, precision, quantization, model_args
):
    _worker(cuda=True, bitsandbytes=True, gptq=True)
    response = _post(client, tiny_model, precision=precision)
    assert response.status_code == 302, unescape(response.content.decode())[-2000:]
    spec = EvaluationRun.objects.get().spec
    assert spec["quantization"] == quantization and RegisteredModel.objects.get().precision == precision
    args = model_arguments(model_path=spec["model_path"], dtype=spec["dtype"], quantization=spec["quantization"])
    assert args == {"pretrained": str(tiny_model), "dtype": spec["dtype"], **model_args}


def test_capability_selector_reads_live_workers_only():
    assert not worker_capability_available("bitsandbytes")
    _worker("old", seen_s_ago=10_000, cuda=True, bitsandbytes=True)
    assert not worker_capability_available(("cuda", "bitsandbytes"))
    _worker("new", cuda=True, bitsandbytes=True)
    assert worker_capability_available(("cuda", "bitsandbytes")) and not worker_capability_available("gptq")
    assert not worker_capability_available("cuda", queue="cpu")


def test_lm_evals_8bit_argument_reaches_bitsandbytes(tiny_model_template):
    """lm-eval 0.4.13 hands load_in_8bit to from_pretrained, which transformers 5 refuses; the site's HFLM turns
    it into the BitsAndBytesConfig transformers takes, so (on this CPU box) loading stops at the library."""
    from lm_eval.models.huggingface import HFLM

    from leaderboard.harness.adapter import _leaderboard_hflm

    args = {
        "pretrained": str(tiny_model_template),
        "device": "cpu",
        "batch_size": 1,
        "dtype": "float16",
        "load_in_8bit": True,
    }
    with pytest.raises(TypeError, match="load_in_8bit"):
        HFLM(**args)
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="bitsandbytes"):
            _leaderboard_hflm()(**args)
    else:  # pragma: no cover - a GPU worker
        pytest.skip("bitsandbytes is installed: the load is for a GPU test")


# --- Delta weights --------------------------------------------------------------------------------


@pytest.fixture
def delta(tiny_model, model_root):
    finetuned = build_tiny_model(model_root / "finetuned", seed=1)
    return delta_folder_make(base=tiny_model, finetuned=finetuned, out=model_root / "delta")


def test_delta_weights_are_queued_with_their_base(client, user, tiny_model, delta):
    response = _post(client, delta, weight_type="delta", base_model_path=str(tiny_model))
    assert response.status_code == 302, unescape(response.content.decode())[-2000:]
    model = RegisteredModel.objects.get()
    assert (model.weight_type, model.base_model_path) == ("delta", str(tiny_model))
    spec = EvaluationRun.objects.get().spec
    assert (spec["weight_type"], spec["base_model_path"], spec["model_path"]) == ("delta", str(tiny_model), str(delta))
    args = model_arguments(
        model_path=spec["model_path"],
        base_model_path=spec["base_model_path"],
        weight_type=spec["weight_type"],
        dtype=spec["dtype"],
        roots=[tiny_model.parent],
    )
    assert args == {"pretrained": str(tiny_model), "delta": str(delta), "dtype": "float32"}
    inspected = client.get(
        reverse("leaderboard:submit_inspect"),
        {"storage_path": str(delta), "weight_type": "delta", "base_model_path": str(tiny_model)},
    ).content.decode()
    assert "Delta weights on" in inspected


def test_delta_problems_are_told_on_the_base_field(client, user, tiny_model, delta, model_root, tmp_path):
    other = build_tiny_model(model_root / "wider", hidden_size=32)
    (model_root / "lora").mkdir()
    (model_root / "lora" / "adapter_config.json").write_text(f'{{"base_model_name_or_path": "{tiny_model}"}}')
    (tmp_path / "elsewhere").mkdir()
    for base, message in (
        (other, "do not match the base model"),
        (delta, "is that folder itself"),
        (model_root / "lora", "is itself an adapter"),
        (tmp_path / "elsewhere", "outside the allowed model roots"),
        ("", "Delta weights need the folder of their base model"),
    ):
        response = _post(client, delta, weight_type="delta", base_model_path=str(base))
        html = unescape(response.content.decode())
        assert response.status_code == 200 and message in html, message
    assert "is a PEFT adapter, not delta weights" in unescape(
        _post(client, model_root / "lora", weight_type="delta", base_model_path=str(tiny_model)).content.decode()
    )
    assert not RegisteredModel.objects.exists() and not EvaluationRun.objects.exists()


def test_worker_refuses_a_base_outside_the_roots(tiny_model, delta, tmp_path, model_root):
    import shutil

    from runs.executors import EvaluationFailed

    outside = shutil.copytree(tiny_model, tmp_path / "outside-base")
    with pytest.raises(EvaluationFailed, match="base model folder .* is outside the allowed model roots"):
        model_arguments(model_path=delta, base_model_path=outside, weight_type="delta", roots=[model_root])
    (model_root / "escape").symlink_to(outside)
    with pytest.raises(EvaluationFailed, match="base model folder .* is outside the allowed model roots"):
        model_arguments(
            model_path=delta, base_model_path=model_root / "escape", weight_type="delta", roots=[model_root]
        )
    lora = tiny_model.parent / "lora"
    lora.mkdir()
    (lora / "adapter_config.json").write_text('{"base_model_name_or_path": "/etc"}')
    with pytest.raises(EvaluationFailed, match="outside the allowed model roots"):
        model_arguments(model_path=lora, roots=[tiny_model.parent])


# --- The form's idempotency token -----------------------------------------------------------------


def _token(html: str) -> str:
    return re.search(r'name="submission_token" value="([^"]+)"', html).group(1)


def test_each_form_gets_a_fresh_token_and_a_repost_makes_one_run(client, user, tiny_model):
    first, second = (_token(client.get(reverse("leaderboard:submit")).content.decode()) for _ in range(2))
    assert first != second and len(first) >= 16
    # A forced run is a new run each time, but one per form: the second post of the same form gets the first run.
    responses = [_post(client, tiny_model, force="on", submission_token=first) for _ in range(2)]
    assert [r.status_code for r in responses] == [302, 302]
    assert responses[0]["Location"] == responses[1]["Location"] and EvaluationRun.objects.count() == 1
    assert _post(client, tiny_model, force="on", submission_token=second).status_code == 302
    assert EvaluationRun.objects.count() == 2
    assert EvaluationRun.objects.filter(submission_key=f"{user.pk}:{first}").exists()


def test_a_used_token_with_other_settings_is_refused_and_renewed(client, user, tiny_model, model_root):
    token = _token(client.get(reverse("leaderboard:submit")).content.decode())
    assert _post(client, tiny_model, submission_token=token).status_code == 302
    other = build_tiny_model(model_root / "other", seed=5)
    response = _post(client, other, submission_token=token)
    html = unescape(response.content.decode())
    assert response.status_code == 200 and "This form was already used to queue run" in html
    assert _token(html) != token
    assert RegisteredModel.objects.count() == 1 and EvaluationRun.objects.count() == 1  # nothing half-stored
    assert _post(client, other, submission_token=_token(html)).status_code == 302


@pytest.mark.parametrize("token", ["", "short", "../../etc/passwd", "x" * 500, "ab-cdefghijk/lmnopqrstu"])
def test_a_malformed_token_is_replaced(client, user, tiny_model, token):
    assert _post(client, tiny_model, submission_token=token).status_code == 302
    key = EvaluationRun.objects.get().submission_key
    assert key.startswith(f"{user.pk}:") and key != f"{user.pk}:{token}" and len(key) < 100


# --- The broker is down ---------------------------------------------------------------------------


@contextmanager
def _broker(up: bool):
    """The site's real Celery app: on the test broker (up), or pointed at a port nothing listens on (down)."""
    from tests.runs.fault_tools import celery_broker, free_port
    from tests.workers import queues_purge

    if up:
        yield
        queues_purge()  # no worker takes what was sent
        return
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"):
        yield


@pytest.mark.django_db(transaction=True)  # the run is sent on commit, before the page is answered
@pytest.mark.parametrize("up", [False, True])
def test_submission_while_the_broker_is_down_says_the_run_will_be_sent(client, user, tiny_model, up):
    with _broker(up):
        page = client.post(
            reverse("leaderboard:submit"),
            {
                "storage_path": str(tiny_model),
                "precision": "float32",
                "weight_type": "original",
                "model_type": "pretrained",
                "suite": "openllm_v1",
            },
            follow=True,
        ).content.decode()
        # An identical submission gets the stored run, still waiting for the broker: the same warning.
        again = _post(client, tiny_model)
    run = EvaluationRun.objects.get()
    assert f"Queued run #{run.pk}" in page
    assert (BROKER_DOWN in unescape(page)) is (not up)
    assert (run.sent_at is None) is (not up)
    assert again.status_code == 302 and EvaluationRun.objects.count() == 1
    assert (BROKER_DOWN in unescape(client.get(again["Location"]).content.decode())) is (not up)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("up", [False, True])
def test_new_evaluation_while_the_broker_is_down_says_the_run_will_be_sent(client, user, up):
    from tests.evaluator.factories import dataset_make

    version = dataset_make(owner=user).latest_version
    with _broker(up):
        page = client.post(
            reverse("evaluator:run_new"),
            {
                "dataset_version": version.pk,
                "target_kind": "precomputed",
                "preset": "custom",
                "metrics": ["exact_match"],
                "prompt_template": "",
            },
            follow=True,
        ).content.decode()
    assert "Queued evaluation run" in page
    assert (BROKER_DOWN in unescape(page)) is (not up)


# --- The new-evaluation page's query parameters ---------------------------------------------------


@pytest.mark.parametrize("value", ["abc", "²", "-1", "0", "1e3", " 7", "9" * 40, "\0", "1\0", "١٢"])
def test_new_evaluation_page_ignores_a_garbage_dataset_version(client, user, value):
    from tests.evaluator.factories import dataset_make

    dataset_make(owner=user)
    # A NUL never reaches the view: the site answers it with 400 for every page (config.middleware).
    expected = 400 if "\0" in value else 200
    assert client.get(reverse("evaluator:run_new"), {"dataset_version": value}).status_code == expected


def test_new_evaluation_page_preselects_only_a_visible_version(client, user):
    from django.contrib.auth.models import Group

    from tests.evaluator.factories import dataset_make

    mine = dataset_make(owner=user, name="mine").latest_version
    hidden = dataset_make(owner=user_create(), private=True, group=Group.objects.create(name="x"), name="theirs")
    page = client.get(reverse("evaluator:run_new"), {"dataset_version": mine.pk}).content.decode()
    assert re.search(rf'<option value="{mine.pk}"[^>]*selected', page)
    page = client.get(reverse("evaluator:run_new"), {"dataset_version": hidden.latest_version.pk}).content.decode()
    assert "theirs" not in page
