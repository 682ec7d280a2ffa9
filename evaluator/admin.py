from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from audit.admin import AuditedDeletionsMixin
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
class LLMEndpointAdmin(AuditedDeletionsMixin, admin.ModelAdmin):
    """The key itself is not here at all (``api_key_encrypted`` is not editable); where it comes from is shown
    read-only: keys are set in the endpoint's own page, which checks them."""

    audit_delete_action = AuditAction.ENDPOINT_DELETED
    list_display = (
        "name",
        "kind",
        "model_name",
        "base_url",
        "secret_kind",
        "api_key_needed",
        "is_judge",
        "last_check_ok",
        "last_checked_at",
    )
    list_filter = ("kind", "is_judge", "secret_kind", "api_key_needed")
    readonly_fields = (
        "secret_kind",
        "secret_name",
        "key_stored",
        "api_key_needed",
        "last_checked_at",
        "last_check_ok",
        "last_check_message",
    )

    @admin.display(boolean=True, description=_("key stored"))
    def key_stored(self, obj) -> bool:
        return obj.has_stored_key

    # The audit log names the changed fields, never their values: one of them may be the key.
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        action = AuditAction.ENDPOINT_CHANGED if change else AuditAction.ENDPOINT_CREATED
        audit_record(request=request, action=action, target=obj, detail={"changed": list(form.changed_data)})


admin.site.register(EmbeddingModel)
