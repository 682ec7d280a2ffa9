"""Project middleware."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext as _

from config.security import wants_json

NUL = "\x00"
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _parameters(request: HttpRequest):
    """(name, values) of every GET and form parameter. (Django's multipart parser already drops
    non-printable characters from uploaded files' names.)"""
    yield from request.GET.lists()
    if request.method == "POST" and request.content_type in _FORM_TYPES:
        yield from request.POST.lists()


def _has_nul(request: HttpRequest) -> bool:
    return NUL in request.path or any(
        NUL in name or any(NUL in value for value in values) for name, values in _parameters(request)
    )


class RejectNulMiddleware:
    """Answers 400 when the path or a GET/POST parameter (name or value) holds a NUL character.

    PostgreSQL refuses NUL in text, so such a value would reach the database as a DataError (HTTP 500)
    wherever a raw parameter is used in a query. Forms catch it on their own fields; this catches the rest,
    once, before any view runs.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _has_nul(request):
            return self.refuse(request)
        return self.get_response(request)

    @staticmethod
    def refuse(request: HttpRequest) -> HttpResponse:
        # LocaleMiddleware has not run yet: answer in the language the client asked for.
        with translation.override(translation.get_language_from_request(request)):
            message = _("The request contains a NUL character, which this site does not accept.")
            if wants_json(request):
                return JsonResponse({"error": message}, status=400)
            return render(request, "errors/bad_request.html", {"message": message}, status=400)
