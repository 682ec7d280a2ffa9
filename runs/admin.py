from django.contrib import admin

from runs.models import EvaluationRun, RunEvent, Score


class RunEventInline(admin.TabularInline):
    model = RunEvent
    extra = 0
    readonly_fields = ("from_status", "to_status", "at", "message")
    can_delete = False


@admin.register(EvaluationRun)
class EvaluationRunAdmin(admin.ModelAdmin):
    list_display = ("pk", "kind", "model", "status", "is_partial", "queued_at", "finished_at", "worker_host")
    list_filter = ("kind", "status", "is_partial")
    search_fields = ("model__display_name", "error_message")
    # Status changes go through runs.services only, so the lifecycle stays recorded.
    readonly_fields = (
        "status",
        "queued_at",
        "started_at",
        "finished_at",
        "heartbeat_at",
        "attempts",
        "worker_host",
        "spec_hash",
        "library_versions",
        "details",
        "log",
        "error_message",
    )
    inlines = [RunEventInline]


@admin.register(Score)
class ScoreAdmin(admin.ModelAdmin):
    list_display = ("run", "task", "metric", "filter", "value", "stderr", "n_shot", "sample_count")
    list_filter = ("metric",)
    search_fields = ("task",)
