"""The demo page: it shows the outcome of a real Socket.IO connect from this page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.templatetags.static import static

from whitelist.models import AllowedOrigin


def demo(request: HttpRequest) -> HttpResponse:
    """Render the page; its script connects and fills in the outcome.

    If a disabled rule would admit this page, a refused page says so: adding the
    origin again would only meet "already exists".
    """
    page_origin = request.build_absolute_uri("/").rstrip("/")
    disabled_rule = AllowedOrigin.objects.filter(enabled=False).matching(page_origin)
    context = {"page_origin": page_origin, "disabled_rule": disabled_rule}
    return render(request, "guardsite/demo.html", context)


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask every site for /favicon.ico (admin pages name no icon): no 404 in the log."""
    # Not permanent: the target's name carries the file's hash, which changes.
    return HttpResponseRedirect(static("guardsite/favicon.svg"))
