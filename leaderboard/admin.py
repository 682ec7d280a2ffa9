from django.contrib import admin

from leaderboard.models import ReferenceRow, RegisteredModel


@admin.register(RegisteredModel)
class RegisteredModelAdmin(admin.ModelAdmin):
    list_display = ("display_name", "precision", "model_type", "weight_type", "architecture", "num_params",
                    "private", "flagged", "deleted", "owner", "group", "submitted_at")
    list_filter = ("precision", "model_type", "weight_type", "private", "flagged", "deleted", "merged", "moe")
    search_fields = ("display_name", "storage_path", "architecture", "license", "revision")
    readonly_fields = ("revision", "submitted_at")


@admin.register(ReferenceRow)
class ReferenceRowAdmin(admin.ModelAdmin):
    """Baseline and reference rows shown above the ranking (never ranked)."""

    list_display = ("label", "kind", "suite", "shown", "position", "note")
    list_filter = ("suite", "kind", "shown")
    list_editable = ("shown", "position")
