import pytest


@pytest.fixture(autouse=True)
def _loopback_endpoints_allowed(settings):
    """The loopback judge serves on 127.0.0.1: these tests allow loopback, as an administrator would list a host.
    The security tests (test_endpoint_security) set their own list."""
    settings.ENDPOINT_ALLOWED_HOSTS = ["127.0.0.0/8"]
