from django.contrib import admin
from django.db import transaction

from audit.models import AuditAction
from audit.services import audit_record
from evaluator.models import DatasetVersion, EmbeddingModel, GoldenDataset, LLMEndpoint


@admin.register(GoldenDataset)
class GoldenDatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "private", "owner", "group", "created_at")
    search_fields = ("name", "description")


@admin.register(DatasetVersion)
class DatasetVersionAdmin(admin.ModelAdmin):
    """Read-only: a version is immutable once written (runs judge against its rows)."""

    list_display = ("dataset", "number", "row_count", "source", "created_at")

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(LLMEndpoint)
class LLMEndpointAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "model_name", "base_url", "is_judge", "last_check_ok", "last_checked_at")
    list_filter = ("kind", "is_judge")

    # The audit log names the changed fields, never their values: one of them may be the key.
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        action = AuditAction.ENDPOINT_CHANGED if change else AuditAction.ENDPOINT_CREATED
        audit_record(request=request, action=action, target=obj, detail={"changed": list(form.changed_data)})

    def delete_model(self, request, obj):
        with transaction.atomic():
            audit_record(request=request, action=AuditAction.ENDPOINT_DELETED, target=obj)
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for obj in queryset:
                audit_record(request=request, action=AuditAction.ENDPOINT_DELETED, target=obj)
            super().delete_queryset(request, queryset)


admin.site.register(EmbeddingModel)
