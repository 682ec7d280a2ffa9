"""The endpoint form by kind: the page names each kind's fields (for static/js/evaluator.js), and the server
keeps only the chosen kind's, so that the form works the same without JS."""

import pytest
from django.urls import reverse

from evaluator.forms import ENDPOINT_KIND_FIELDS
from evaluator.models import LLMEndpoint
from tests.factories import user_create

pytestmark = pytest.mark.django_db


def test_the_page_names_the_fields_of_each_kind(client):
    client.force_login(user_create())
    page = client.get(reverse("evaluator:endpoint_new")).content.decode()
    assert f'data-local-fields="{" ".join(ENDPOINT_KIND_FIELDS["local"])}"' in page
    assert 'data-openai-fields="base_url model_name' in page and "js/evaluator.js" in page


def test_an_api_endpoint_keeps_no_folder_typed_before_switching(client, settings):
    settings.ENDPOINT_ALLOWED_HOSTS = ["127.0.0.0/8"]
    client.force_login(user_create())
    response = client.post(
        reverse("evaluator:endpoint_new"),
        {
            "name": "api",
            "kind": "openai",
            "base_url": "http://127.0.0.1:8000/v1",
            "model_name": "m",
            "secret_kind": "",
            "local_path": "/models/forgotten",
            "temperature": 0,
            "max_tokens": 256,
            "timeout_s": 5,
            "max_concurrency": 4,
            "max_retries": 0,
        },
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert LLMEndpoint.objects.get(name="api").local_path == ""
