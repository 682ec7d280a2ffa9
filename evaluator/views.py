import json
from dataclasses import replace

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from audit.models import AuditAction
from audit.services import audit_record
from config.htmx import render_page_or_fragment, wants_fragment
from config.params import int_param, text_param
from evaluator.datasets import DatasetFileError, DatasetLimits, RowData, dataset_file_parse
from evaluator.forms import (
    DatasetUploadForm,
    DatasetVersionUploadForm,
    EmbeddingForm,
    EndpointForm,
    EvaluationRunForm,
    RowEditForm,
)
from evaluator.metrics import CONTEXTS, EMBEDDING, METRICS, PRESETS, REFERENCE, TEXT, metric_needs_judge
from evaluator.models import (
    DatasetRow,
    DatasetVersion,
    EmbeddingModel,
    GoldenDataset,
    JudgeReview,
    LLMEndpoint,
    MetricScore,
    TargetKind,
)
from evaluator.selectors import (
    dataset_can_edit,
    dataset_rows_page,
    datasets_visible_to,
    embedder_is_english_only,
    endpoint_can_edit,
    endpoints_editable_ids,
    evaluator_runs_visible_to,
    hangul_version_ids,
    run_korean_embedder_warning,
    run_results,
    run_spec_visible,
    run_tags,
    runs_comparable_with,
    runs_compare,
    runs_compare_refusal,
    sample_results_page,
)
from evaluator.services import (
    EvaluationSetupError,
    dataset_create,
    dataset_version_create,
    dataset_version_edit,
    dataset_version_is_locked,
    evaluation_submit,
)
from runs.csv_export import csv_response
from runs.selectors import run_can_cancel, runs_visible_to

KOREAN_EMBEDDER_WARNING = gettext_lazy(
    "This dataset has Korean text, and the default embedding model (all-MiniLM-L6-v2) was trained on English only: "
    "answer relevance, answer correctness and semantic similarity on Korean text mostly measure shared script, "
    "not meaning. Register a multilingual sentence-transformers folder (Register an embedding model) and pick it."
)


@require_GET
def evaluator_index(request):
    endpoints = list(LLMEndpoint.objects.visible_to(request.user))
    return render(
        request,
        "evaluator/index.html",
        {
            "datasets": datasets_visible_to(request.user),
            "endpoints": endpoints,
            "editable_endpoints": endpoints_editable_ids(endpoints=endpoints, user=request.user),
            "embeddings": EmbeddingModel.objects.all(),
            "runs": evaluator_runs_visible_to(request.user)[:20],
        },
    )


CHECK_TIMEOUT_S = 10.0


def _limits() -> dict:
    """The upload limits shown on the page (read at request time, as the parser reads them)."""
    limits = DatasetLimits.from_settings()
    return {
        "bytes": limits.max_bytes,
        "rows": limits.max_rows,
        "columns": limits.max_columns,
        "chars": limits.max_field_chars,
    }


def _parse_upload(form, field="file"):
    upload = form.cleaned_data[field]  # its size was checked by the form, before anything read it
    try:
        # The file itself (in memory, or spooled to disk), read as a stream: never whole into memory.
        return dataset_file_parse(filename=upload.name, content=upload.file), None
    except DatasetFileError as exc:
        return None, exc.problems


def dataset_new(request):
    form = DatasetUploadForm(request.POST or None, request.FILES or None)
    problems = []
    if request.method == "POST" and form.is_valid():
        parsed, problems = _parse_upload(form)
        if parsed is not None:
            dataset = dataset_create(
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                rows=parsed.rows,
                owner=request.user,
                private=form.cleaned_data["private"],
                group=request.user.groups.first() if form.cleaned_data["private"] else None,
                source=form.cleaned_data["file"].name,
            )
            audit_record(
                request=request, action=AuditAction.DATASET_CREATED, target=dataset, detail={"rows": len(parsed.rows)}
            )
            for warning in parsed.warnings:
                messages.warning(request, warning)
            messages.success(
                request, _("Registered %(name)s with %(n)s rows.") % {"name": dataset.name, "n": len(parsed.rows)}
            )
            return redirect("evaluator:dataset", dataset_id=dataset.pk)
    return render(request, "evaluator/dataset_new.html", {"form": form, "problems": problems, "limits": _limits()})


def _dataset_for(request, dataset_id):
    return get_object_or_404(GoldenDataset.objects.visible_to(request.user), pk=dataset_id)


def dataset_detail(request, dataset_id: int):
    dataset = _dataset_for(request, dataset_id)
    versions = list(dataset.versions.all())
    if not versions:
        raise Http404
    version = next((v for v in versions if v.number == int_param(request.GET, "v")), versions[0])
    if request.method == "POST" and not dataset_can_edit(dataset=dataset, user=request.user):
        raise PermissionDenied
    upload_form = DatasetVersionUploadForm(request.POST or None, request.FILES or None, prefix="upload")
    edit_form = RowEditForm(request.POST or None, prefix="edit")
    problems = []
    if request.method == "POST" and "upload-file" in request.FILES and upload_form.is_valid():
        parsed, problems = _parse_upload(upload_form)
        if parsed is not None:
            new = dataset_version_create(
                dataset=dataset,
                rows=parsed.rows,
                source=upload_form.cleaned_data["file"].name,
                note=upload_form.cleaned_data["note"],
                created_by=request.user,
            )
            audit_record(
                request=request, action=AuditAction.DATASET_VERSION_CREATED, target=new, detail={"rows": new.row_count}
            )
            messages.success(request, _("Version %(n)s created.") % {"n": new.number})
            return redirect(f"{request.path}?v={new.number}")
    elif request.method == "POST" and "edit-question" in request.POST and edit_form.is_valid():
        new = _row_edit_apply(version, edit_form, request.user)
        if new is not None:
            audit_record(
                request=request,
                action=AuditAction.DATASET_VERSION_CREATED,
                target=new,
                detail={"edited": version.number},
            )
            messages.success(
                request,
                _("Saved as version %(n)s; version %(old)s is unchanged.") % {"n": new.number, "old": version.number},
            )
            return redirect(f"{request.path}?v={new.number}")

    query, tag = text_param(request.GET, "q"), text_param(request.GET, "tag")
    page, tag_counts = dataset_rows_page(version=version, query=query, tag=tag, page=int_param(request.GET, "page", 1))
    context = {
        "dataset": dataset,
        "version": version,
        "versions": versions,
        "page": page,
        "query": query,
        "tag": tag,
        "tag_counts": tag_counts,
        "locked": dataset_version_is_locked(version=version),
        "can_edit": dataset_can_edit(dataset=dataset, user=request.user),
        "upload_form": upload_form,
        "edit_form": edit_form,
        "problems": problems,
        "limits": _limits(),
    }
    return render_page_or_fragment(
        request, page="evaluator/dataset_detail.html", fragment="evaluator/_dataset_rows.html", context=context
    )


@require_GET
def dataset_row_form(request, dataset_id: int, number: int, position: int = 0):
    """The in-page row editor (htmx): a row's form prefilled, or an empty one to add a row."""
    dataset = _dataset_for(request, dataset_id)
    if not dataset_can_edit(dataset=dataset, user=request.user):
        raise PermissionDenied
    version = get_object_or_404(dataset.versions, number=number)
    initial = {}
    if position:
        row = get_object_or_404(version.rows, position=position)
        initial = {
            "position": row.position,
            "question": row.question,
            "reference": row.reference,
            "contexts": "\n|||\n".join(row.contexts),
            "response": row.response,
            "tags": ", ".join(row.tags),
        }
    form = RowEditForm(prefix="edit", initial=initial)
    return render(
        request,
        "evaluator/_row_form.html",
        {"dataset": dataset, "version": version, "edit_form": form, "position": position},
    )


def _row_edit_apply(version: DatasetVersion, form: RowEditForm, user) -> DatasetVersion | None:
    """The new version, or None with the reason added to the form."""
    data = form.cleaned_data
    row = RowData(
        question=data["question"].strip(),
        reference=data["reference"].strip(),
        contexts=tuple(data["contexts"]),
        response=data["response"].strip(),
        tags=tuple(data["tags"]),
    )
    position = data.get("position")
    if position:
        return dataset_version_edit(version=version, edits={position: None if data["delete"] else row}, edited_by=user)
    max_rows = DatasetLimits.from_settings().max_rows
    if version.row_count >= max_rows:
        form.add_error(
            None,
            _("This version has %(n)s rows, as many as a version may have: delete a row before adding one.")
            % {"n": version.row_count},
        )
        return None
    return dataset_version_edit(version=version, edits={}, additions=[row], edited_by=user)


def embedding_new(request):
    form = EmbeddingForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        embedding = form.save()
        messages.success(request, _("Registered %(name)s.") % {"name": embedding.name})
        return redirect("evaluator:index")
    from evaluator.generation import default_embedding_path

    try:
        default_path = default_embedding_path()
    except Exception as exc:  # the package missing: say so on the page rather than fail it
        default_path = str(exc)
    return render(request, "evaluator/embedding_new.html", {"form": form, "default_path": default_path})


def endpoint_new(request):
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        endpoint = form.save(commit=False)
        endpoint.owner = request.user
        endpoint.save()
        audit_record(
            request=request, action=AuditAction.ENDPOINT_CREATED, target=endpoint, detail={"kind": endpoint.kind}
        )
        messages.success(request, _("Registered %(name)s.") % {"name": endpoint.name})
        return redirect("evaluator:index")
    return render(request, "evaluator/endpoint_new.html", {"form": form})


def endpoint_edit(request, endpoint_id: int):
    """Change an endpoint: its URL, its settings, and its key (replace or remove; a stored key is never shown)."""
    endpoint = get_object_or_404(LLMEndpoint.objects.visible_to(request.user), pk=endpoint_id)
    if not endpoint_can_edit(endpoint=endpoint, user=request.user):
        raise PermissionDenied
    form = EndpointForm(request.POST or None, instance=endpoint)
    if request.method == "POST" and form.is_valid():
        form.save()
        # Field names only: one of them may be the key.
        audit_record(
            request=request,
            action=AuditAction.ENDPOINT_CHANGED,
            target=endpoint,
            detail={"changed": list(form.changed_data)},
        )
        messages.success(request, _("Saved %(name)s.") % {"name": endpoint.name})
        return redirect("evaluator:index")
    return render(request, "evaluator/endpoint_new.html", {"form": form, "endpoint": endpoint})


@require_POST
def endpoint_check_view(request, endpoint_id: int):
    """The "test connection" button: one tiny call (or, for a local folder, its config), saved on the row. The
    URL is checked and the key resolved here, in the web process, exactly as a worker does before a run."""
    from evaluator.endpoints import EndpointRefused, endpoint_config, endpoint_spec
    from evaluator.generation import endpoint_check, no_answer_message
    from evaluator.url_policy import HostUnresolved
    from runs.messages import message_of, message_split

    endpoint = get_object_or_404(LLMEndpoint.objects.visible_to(request.user), pk=endpoint_id)
    try:
        config = endpoint_config(endpoint_spec(endpoint))
        # In the web request: a short timeout, so a dead endpoint answers the button in seconds.
        ok, message = endpoint_check(replace(config, timeout_s=min(config.timeout_s, CHECK_TIMEOUT_S)))
    except HostUnresolved:  # told like any other failure to connect: no DNS oracle
        ok, message = False, no_answer_message(min(endpoint.timeout_s, CHECK_TIMEOUT_S))
    except EndpointRefused as exc:
        ok, message = False, message_of(exc)
    text, coded = message_split(message, limit=2000)
    LLMEndpoint.objects.filter(pk=endpoint.pk).update(
        last_checked_at=timezone.now(), last_check_ok=ok, last_check_message=text, last_check_message_i18n=coded
    )
    return render(request, "evaluator/_endpoint_check.html", {"ok": ok, "message": message, "endpoint": endpoint})


def run_new(request):
    from runs import idempotency
    from runs.selectors import BROKER_DOWN_MESSAGE, run_awaits_broker

    initial = {}
    form = EvaluationRunForm(request.POST or None, user=request.user, initial=initial)
    # "Responses already in the dataset" is offered only for versions whose every row has one.
    versions = form.fields["dataset_version"].queryset
    asked = int_param(request.GET, "dataset_version")
    if asked is not None and versions.filter(pk=asked).exists():
        initial["dataset_version"] = asked
    without_responses = sorted(
        set(
            DatasetRow.objects.filter(version__in=versions.values("pk"), response="").values_list(
                "version_id", flat=True
            )
        )
    )
    if not form.is_bound:
        chosen = initial.get("dataset_version") or (
            versions.order_by("-created_at").values_list("pk", flat=True).first()
        )
        form.initial["dataset_version"] = chosen
        if chosen and chosen in without_responses:
            form.initial["target_kind"] = TargetKind.ENDPOINT
    # The form's idempotency token (a hidden field): posting the same form twice queues one run.
    token = (
        idempotency.submission_token_clean(request.POST.get(idempotency.FIELD_NAME))
        or idempotency.submission_token_new()
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        metrics = data["metrics"] or ([] if data["preset"] == "custom" else PRESETS[data["preset"]])
        try:
            run = evaluation_submit(
                dataset_version=data["dataset_version"],
                target_kind=data["target_kind"],
                metric_keys=metrics,
                target_model=data["target_model"],
                target_endpoint=data["target_endpoint"],
                judge=data["judge"],
                embedding=data["embedding"],
                preset=data["preset"],
                custom_criteria=form.criteria(),
                prompt_template=data["prompt_template"] or None,
                submitted_by=request.user,
                submission_key=idempotency.submission_key_make(user=request.user, token=token),
            )
        except EvaluationSetupError as exc:
            for problem in exc.problems:
                form.add_error(None, problem)
        except idempotency.SubmissionKeyReused as exc:
            token = idempotency.submission_token_new()
            form.add_error(
                None,
                _("This form was already used to queue run #%(id)s. It is ready again: send it to queue another run.")
                % {"id": exc.run.pk},
            )
        else:
            audit_record(request=request, action=AuditAction.EVALUATION_SUBMITTED, target=run)
            messages.success(request, _("Queued evaluation run #%(id)s.") % {"id": run.pk})
            if run_korean_embedder_warning(run=run):
                messages.warning(request, KOREAN_EMBEDDER_WARNING)
            if run_awaits_broker(run=run):
                messages.warning(request, BROKER_DOWN_MESSAGE)
            return redirect("evaluator:run", run_id=run.pk)
    from evaluator.generation import DEFAULT_PROMPT_TEMPLATE

    return render(
        request,
        "evaluator/run_new.html",
        {
            "form": form,
            "presets": PRESETS,
            "without_responses": without_responses,
            **_korean_context(form, versions),
            "default_template": DEFAULT_PROMPT_TEMPLATE,
            "metric_groups": _metric_groups(form),
            "submission_token": token,
        },
    )


def _korean_context(form, versions) -> dict:
    """The Korean-text warning of the form: which versions have Korean text (site.js shows the note when one
    is picked), and whether the version chosen now has, with the English-only default embedder."""
    korean = sorted(hangul_version_ids(version_ids=versions.values("pk")))
    chosen_version = form.data.get("dataset_version") if form.is_bound else form.initial.get("dataset_version")
    chosen_embedding = getattr(form, "cleaned_data", {}).get("embedding")
    return {
        "korean_versions": korean,
        "korean_embedder_warning": KOREAN_EMBEDDER_WARNING,
        "korean_chosen": str(chosen_version) in {str(pk) for pk in korean}
        and embedder_is_english_only(chosen_embedding),
    }


def _metric_groups(form) -> list[tuple[str, list]]:
    """The metric checkboxes grouped by what they call, so that one can see which need the judge."""
    boxes = {box.data["value"]: box for box in form["metrics"]}
    groups = [
        (_("Judged by the judge LLM"), [k for k in METRICS if metric_needs_judge(k)]),
        (_("Embedding model only"), [k for k in METRICS if not metric_needs_judge(k) and METRICS[k].kind == EMBEDDING]),
        (_("Text overlap, no model"), [k for k in METRICS if METRICS[k].kind == TEXT]),
    ]
    return [
        (title, [(boxes[k], METRICS[k], _metric_needs_text(METRICS[k].needs)) for k in keys if k in boxes])
        for title, keys in groups
        if keys
    ]


def _metric_needs_text(needs) -> str:
    if needs >= {REFERENCE, CONTEXTS}:
        return _("needs reference answers and contexts")
    if REFERENCE in needs:
        return _("needs reference answers")
    return _("needs contexts") if CONTEXTS in needs else ""


def _run_for(request, run_id):
    return get_object_or_404(evaluator_runs_visible_to(request.user), pk=run_id)


@require_GET
def run_detail(request, run_id: int):
    run = _run_for(request, run_id)
    context = {
        "run": run,
        "can_cancel": run_can_cancel(run=run, user=request.user),
        "results": run_results(run=run),
        "korean_embedder_warning": run_korean_embedder_warning(run=run),
        # The shared run page (log, events) follows the runs app's own visibility rule.
        "run_page_visible": runs_visible_to(request.user).filter(pk=run.pk).exists(),
        "other_runs": runs_comparable_with(run=run, user=request.user)[:50],
    }
    context.update(_samples_context(request, run))
    return render(request, "evaluator/run_detail.html", context)


@require_GET
def run_status(request, run_id: int):
    """The polled status (htmx). When the run has ended, the page reloads itself to show the results."""
    run = _run_for(request, run_id)
    response = render(
        request, "evaluator/_status.html", {"run": run, "can_cancel": run_can_cancel(run=run, user=request.user)}
    )
    if wants_fragment(request) and not run.is_active:
        response["HX-Refresh"] = "true"
    return response


def _samples_context(request, run):
    tag, metric = text_param(request.GET, "tag"), text_param(request.GET, "metric")
    only_unscored = request.GET.get("unscored") == "1"
    page = sample_results_page(
        run=run, tag=tag, metric=metric, only_unscored=only_unscored, page=int_param(request.GET, "page", 1)
    )
    reviews = {
        r.score_id: r
        for r in JudgeReview.objects.filter(score__sample__in=list(page.object_list), reviewer=request.user)
    }
    labels = {key: str(METRICS[key].label) if key in METRICS else key for key in run.spec.get("metrics", [])}
    labels.update({c["key"]: c["name"] for c in run.spec.get("custom_criteria", [])})
    return {
        "samples": page,
        "tag": tag,
        "metric": metric,
        "only_unscored": only_unscored,
        "my_reviews": reviews,
        "metric_labels": labels,
        "run_tags": run_tags(run=run),
    }


@require_GET
def run_samples(request, run_id: int):
    run = _run_for(request, run_id)
    return render(request, "evaluator/_samples.html", {"run": run, **_samples_context(request, run)})


@require_GET
def run_export(request, run_id: int, fmt: str):
    run = _run_for(request, run_id)
    samples = sample_results_page(run=run, per_page=100_000).object_list
    records = []
    for sample in samples:
        record = {
            "row": sample.row.position,
            "question": sample.row.question,
            "reference": sample.row.reference,
            "contexts": sample.row.contexts,
            "tags": sample.row.tags,
            "response": sample.response,
            "generation_error": sample.generation_error,
        }
        for score in sample.metric_scores.all():
            record[score.metric] = score.value
            record[f"{score.metric}_reason"] = score.reason
            record[f"{score.metric}_unscored_reason"] = score.unscored_reason
        records.append(record)
    if fmt == "json":
        return JsonResponse(
            {
                "run": run.pk,
                "status": run.status,
                "error": run.error_message,
                "spec": run_spec_visible(run=run, user=request.user),
                "samples": records,
            },
            json_dumps_params={"ensure_ascii": False},
        )
    if fmt != "csv":
        raise Http404
    fields = list(dict.fromkeys(key for record in records for key in record))
    return csv_response(
        f"evaluation-{run.pk}.csv",
        fields,
        (
            {k: json.dumps(v, ensure_ascii=False) if isinstance(v, list) else v for k, v in record.items()}
            for record in records
        ),
    )


@require_POST
def score_review(request, score_id: int):
    """A reviewer marks a judge score right or wrong (htmx: returns the review buttons)."""
    score = get_object_or_404(MetricScore.objects.select_related("sample__run"), pk=score_id)
    if not evaluator_runs_visible_to(request.user).filter(pk=score.sample.run_id).exists():
        raise Http404
    review, _created = JudgeReview.objects.update_or_create(
        score=score, reviewer=request.user, defaults={"agrees": request.POST.get("agrees") == "1", "at": timezone.now()}
    )
    return render(request, "evaluator/_review.html", {"score": score, "review": review})


@require_GET
def runs_compare_view(request):
    a_id, b_id = int_param(request.GET, "a"), int_param(request.GET, "b")
    if a_id is None or b_id is None:
        raise Http404(_("Pick two runs to compare."))
    run_a, run_b = _run_for(request, a_id), _run_for(request, b_id)  # another group's private run: 404
    refusal = runs_compare_refusal(run_a=run_a, run_b=run_b)
    if refusal:
        return render(request, "errors/bad_request.html", {"message": refusal}, status=400)
    deltas, changed = runs_compare(run_a=run_a, run_b=run_b)
    return render(
        request,
        "evaluator/compare.html",
        {
            "run_a": run_a,
            "run_b": run_b,
            "deltas": deltas,
            "better": [c for c in changed if c[3] > c[2]],
            "worse": [c for c in changed if c[3] < c[2]],
            "labels": {k: m.label for k, m in METRICS.items()},
        },
    )
