from django.contrib import admin

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


admin.site.register(EmbeddingModel)
