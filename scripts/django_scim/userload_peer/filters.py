"""The filter attributes the user columns answer (in a module of their own: django-scim2
reads them while it loads the adapters)."""

from django_scim.filters import UserFilterQuery


class UserFilter(UserFilterQuery):
    """The filter attributes the columns answer; any other attribute matches no one."""

    attr_map = {
        ("userName", None, None): "username",
        ("externalId", None, None): "scim_external_id",
        ("active", None, None): "is_active",
        ("name", "givenName", None): "first_name",
        ("name", "familyName", None): "last_name",
        ("emails", "value", None): "email",
    }
