from django.contrib import admin

from audit.admin import AuditedDeletionsMixin
from audit.models import AuditAction
from audit.services import audit_record
from leaderboard.models import ReferenceRow, RegisteredModel


@admin.register(RegisteredModel)
class RegisteredModelAdmin(AuditedDeletionsMixin, admin.ModelAdmin):
    audit_delete_action = AuditAction.MODEL_DELETED
    list_display = (
        "display_name",
        "precision",
        "model_type",
        "weight_type",
        "architecture",
        "num_params",
        "private",
        "flagged",
        "deleted",
        "owner",
        "group",
        "submitted_at",
    )
    list_filter = ("precision", "model_type", "weight_type", "private", "flagged", "deleted", "merged", "moe")
    search_fields = ("display_name", "storage_path", "architecture", "license", "revision")
    readonly_fields = ("revision", "submitted_at")

    # The audit log: flagging and unflagging are events of their own, any other edit one "changed" event
    # with the new values; a deletion is recorded before the row goes, in the same transaction.
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        changed = [name for name in form.changed_data if name != "flagged"]
        if "flagged" in form.changed_data:
            action = AuditAction.MODEL_FLAGGED if obj.flagged else AuditAction.MODEL_UNFLAGGED
            audit_record(request=request, action=action, target=obj)
        if changed or not change:
            audit_record(
                request=request,
                action=AuditAction.MODEL_CHANGED,
                target=obj,
                detail={"added": not change, "changed": {name: form.cleaned_data.get(name) for name in changed}},
            )


@admin.register(ReferenceRow)
class ReferenceRowAdmin(admin.ModelAdmin):
    """Baseline and reference rows shown above the ranking (never ranked)."""

    list_display = ("label", "kind", "suite", "shown", "position", "note")
    list_filter = ("suite", "kind", "shown")
    list_editable = ("shown", "position")
