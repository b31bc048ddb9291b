from __future__ import annotations

from django.urls import path

from examples.django_project.invoices import views

urlpatterns = [
    path("invoices/<uuid:invoice_id>/void", views.void_invoice),
]
