from django.apps import AppConfig


class AuditConfig(AppConfig):
    """Who did what, when and from where: submissions, cancellations, admin changes of models and endpoints."""

    name = "audit"
    verbose_name = "Audit log"
