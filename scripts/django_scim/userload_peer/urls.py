"""The SCIM endpoints under /v2, as scim2-server serves them."""

from django.urls import include, path

urlpatterns = [
    path("v2/", include("django_scim.urls", namespace="scim")),
]
