"""The demo page: it shows the outcome of a real Socket.IO connect from this page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.templatetags.static import static


def demo(request: HttpRequest) -> HttpResponse:
    """Render the page; its script connects and fills in the outcome."""
    page_origin = request.build_absolute_uri("/").rstrip("/")
    return render(request, "guardsite/demo.html", {"page_origin": page_origin})


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask every site for /favicon.ico (admin pages name no icon): no 404 in the log."""
    # Not permanent: the target's name carries the file's hash, which changes.
    return HttpResponseRedirect(static("guardsite/favicon.svg"))
