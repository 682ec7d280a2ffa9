from django.contrib import admin

from audit.models import AuditEvent


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
