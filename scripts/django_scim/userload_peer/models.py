"""The user: Django's own user with django-scim2's SCIM columns, and the rest of the SCIM
document (title, addresses, the enterprise extension…) kept as JSON."""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower
from django_scim.models import AbstractSCIMUserMixin


class User(AbstractSCIMUserMixin, AbstractUser):
    """A SCIM user. userName is unique whatever its case, as SCIM says."""

    doc = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("username"), name="username_any_case"),
        ]
