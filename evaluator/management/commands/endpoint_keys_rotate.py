"""Re-encrypt every stored endpoint API key with the first FIELD_ENCRYPTION_KEY (after putting a new key first)."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from evaluator.endpoint_secrets import SecretMissing, key_rotate
from evaluator.models import LLMEndpoint


class Command(BaseCommand):
    help = "Re-encrypt stored endpoint API keys with the first key of FIELD_ENCRYPTION_KEY; then old keys can go."

    def handle(self, *args, **options):
        from cryptography.fernet import InvalidToken

        rotated, unreadable = 0, []
        with transaction.atomic():
            for endpoint in LLMEndpoint.objects.select_for_update().exclude(api_key_encrypted=""):
                try:
                    token = key_rotate(endpoint.api_key_encrypted)
                except InvalidToken:
                    unreadable.append(endpoint.name)
                    continue
                except SecretMissing as exc:
                    raise CommandError(str(exc)) from None
                LLMEndpoint.objects.filter(pk=endpoint.pk).update(api_key_encrypted=token)
                rotated += 1
        self.stdout.write(f"Re-encrypted {rotated} stored API keys.")
        if unreadable:
            self.stdout.write(f"Not readable with any configured key (enter them again): {', '.join(unreadable)}")
