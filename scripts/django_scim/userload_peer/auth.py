"""A bearer token in place of a login: the request is let through when it carries the token
the server was started with (or always, when it was started without one). Discovery
endpoints need no token, so that a start can tell when the server answers."""

import hmac
import os

DISCOVERY = ("/v2/ServiceProviderConfig", "/v2/ResourceTypes", "/v2/Schemas")


class Client:
    """The caller, once its token was accepted."""

    is_authenticated = True
    is_active = True


class BearerToken:
    """Django middleware: sets request.user when the token matches; django-scim2 answers
    401 to any request without one."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.token = os.environ.get("USERLOAD_SCIM_TOKEN", "")

    def __call__(self, request):
        given = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, value = given.partition(" ")
        open_path = request.method == "GET" and request.path.startswith(DISCOVERY)
        if (
            not self.token
            or open_path
            or (
                scheme.lower() == "bearer"
                and hmac.compare_digest(value.strip().encode(), self.token.encode())
            )
        ):
            request.user = Client()
        return self.get_response(request)
