from django.contrib import admin
from django.db import transaction

from audit.models import AuditEvent
from audit.services import audit_record


class AuditedDeletionsMixin:
    """For the ModelAdmin of a row whose deletion the audit log keeps: ``audit_delete_action`` is recorded
    for each row before it goes (one at a time or in bulk), in the same transaction."""

    audit_delete_action: str

    def delete_model(self, request, obj):
        with transaction.atomic():
            audit_record(request=request, action=self.audit_delete_action, target=obj)
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for obj in queryset:
                audit_record(request=request, action=self.audit_delete_action, target=obj)
            super().delete_queryset(request, queryset)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log, read-only: any staff member may read it, nobody may add, change or delete a row."""

    list_display = ("at", "actor_name", "ip_address", "action", "target_type", "target_label")
    list_filter = ("action", ("actor", admin.RelatedOnlyFieldListFilter), ("at", admin.DateFieldListFilter))
    search_fields = ("actor_name", "target_label", "target_id", "ip_address")
    date_hierarchy = "at"
    list_select_related = ("actor",)
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
