"""Who is asking, and what a refused login sees: the client address rule shared by login throttling and
the audit log, and django-axes' lockout page."""

from __future__ import annotations

import ipaddress
import math

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

LOCKOUT_STATUS = 429


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def _trusted_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(entry, strict=False) for entry in settings.TRUSTED_PROXIES]


def _is_trusted(address, networks) -> bool:
    return any(address in network for network in networks if network.version == address.version)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: REMOTE_ADDR, or, when REMOTE_ADDR is a trusted proxy (TRUSTED_PROXIES), the
    right-most X-Forwarded-For entry that is not itself a trusted proxy.

    Right-most, not left-most: a client can write anything at the left of the header, and each trusted
    proxy appends what it saw, so the first untrusted address from the right is the one a proxy vouched for.
    """
    remote = _address(request.META.get("REMOTE_ADDR", ""))
    if remote is None:
        return None
    networks = _trusted_networks()
    if not networks or not _is_trusted(remote, networks):
        return str(remote)
    for entry in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        forwarded = _address(entry)
        if forwarded is None:
            break  # a malformed hop: trust nothing further left of it
        if not _is_trusted(forwarded, networks):
            return str(forwarded)
    return str(remote)


def wants_json(request: HttpRequest) -> bool:
    """A client that asked for JSON (a script, an export URL) gets an error it can parse."""
    return "application/json" in request.headers.get("Accept", "") or request.path.endswith(".json")


def login_lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """django-axes' answer to a locked-out user name and address: the site's own page, status 429."""
    cool_off = settings.AXES_COOLOFF_TIME
    minutes = math.ceil(cool_off.total_seconds() / 60) if cool_off else 0
    if minutes:
        message = ngettext(
            "Too many failed logins for this user name from your address. Try again in %(minutes)d minute, "
            "or ask an administrator to unlock it.",
            "Too many failed logins for this user name from your address. Try again in %(minutes)d minutes, "
            "or ask an administrator to unlock it.",
            minutes,
        ) % {"minutes": minutes}
    else:
        message = _("Too many failed logins for this user name from your address. Ask an administrator to unlock it.")
    if wants_json(request):
        return JsonResponse({"error": message}, status=LOCKOUT_STATUS)
    return render(
        request, "registration/locked_out.html", {"message": message, "minutes": minutes}, status=LOCKOUT_STATUS
    )
