"""URL routes: the demo page and Django admin (Socket.IO is routed in wsgi.py)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path("", views.demo, name="demo"),
    path("admin/", admin.site.urls),
    # Browsers ask every page's site for one (admin pages name none): no 404 in the log.
    path("favicon.ico", views.favicon),
]
