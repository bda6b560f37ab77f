"""django-scim2 adapters for the user model: the SCIM document in and out, PATCH operations
on it, and the filter attributes that map to columns.

django-scim2 leaves PATCH to the adapter; this one applies add, replace and remove to
simple paths (`title`), sub-attributes (`name.givenName`), extension attributes (with their
schema URN) and one value filter (`emails[type eq "work"].value`), as RFC 7644 §3.5.2 says.
"""

import re

from django import db
from django_scim import exceptions
from django_scim.adapters import SCIMUser
from django_scim.constants import SchemaURI

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
# Attributes kept in columns rather than in the JSON document.
COLUMNS = ("userName", "externalId", "active")
# Attributes the server sets; a client's values are ignored.
READ_ONLY = ("id", "meta", "groups")
PATH = re.compile(
    r'^(?P<attr>[A-Za-z][\w$-]*)'
    r'(?:\[(?P<key>[A-Za-z][\w$-]*) eq "(?P<want>(?:[^"\\]|\\.)*)"\])?'
    r"(?:\.(?P<sub>[A-Za-z][\w$-]*))?$"
)


def base_location(request=None, *args, **kwargs):
    """The scheme and host the client used, so that meta.location names this server."""
    if request is None:
        return "http://127.0.0.1"
    return "http://" + request.get_host()


def bad(detail, scim_type=None):
    return exceptions.BadRequestError(detail, scim_type=scim_type)


def primary_email(emails):
    """The e-mail kept in the email column: the primary one, else the work one, else the
    first."""
    if not isinstance(emails, list):
        return ""
    for test in (lambda e: e.get("primary") is True, lambda e: e.get("type") == "work", None):
        for e in emails:
            if isinstance(e, dict) and (test is None or test(e)):
                return str(e.get("value") or "")
    return ""


def matches(element, key, want):
    value = element.get(key) if isinstance(element, dict) else None
    return isinstance(value, str) and value.lower() == want.lower()


class User(SCIMUser):
    """The SCIM view of userload_peer.User."""

    def document(self):
        """The user's attributes as a client wrote them (no id, no meta)."""
        d = dict(self.obj.doc or {})
        d["userName"] = self.obj.username
        if self.obj.scim_external_id:
            d["externalId"] = self.obj.scim_external_id
        d["active"] = self.obj.is_active
        return d

    def to_dict(self):
        d = self.document()
        d.setdefault("schemas", [SchemaURI.USER])
        d["id"] = self.id
        d["meta"] = self.meta
        return d

    def from_dict(self, d):
        """Takes a whole user (POST, PUT), or the document a PATCH made."""
        if not isinstance(d, dict):
            raise bad("a user must be a JSON object", "invalidSyntax")
        user_name = d.get("userName")
        if not isinstance(user_name, str) or not user_name.strip():
            raise bad("userName is required", "invalidValue")
        active = d.get("active", True)
        if not isinstance(active, bool):
            raise bad('"active" must be true or false', "invalidValue")
        external_id = d.get("externalId")
        if external_id is not None and not isinstance(external_id, str):
            raise bad('"externalId" must be a string', "invalidValue")
        rest = {
            k: v
            for k, v in d.items()
            if k not in COLUMNS and k not in READ_ONLY and v is not None
        }
        self.obj.username = user_name
        self.obj.scim_username = user_name
        self.obj.scim_external_id = external_id or None
        self.obj.is_active = active
        name = rest.get("name") if isinstance(rest.get("name"), dict) else {}
        self.obj.first_name = str(name.get("givenName") or "")[:150]
        self.obj.last_name = str(name.get("familyName") or "")[:150]
        self.obj.email = primary_email(rest.get("emails"))[:254]
        self.obj.doc = rest

    def handle_operations(self, operations):
        if not isinstance(operations, list):
            raise bad("Operations must be a list", "invalidSyntax")
        d = self.document()
        for operation in operations:
            if not isinstance(operation, dict):
                raise bad("an operation must be a JSON object", "invalidSyntax")
            op = str(operation.get("op", "")).lower()
            if op not in ("add", "replace", "remove"):
                raise bad(f'unknown PATCH op "{op}"', "invalidSyntax")
            path = operation.get("path")
            value = operation.get("value")
            if path is None:
                if op == "remove":
                    raise bad('"path" is required to remove', "noTarget")
                if not isinstance(value, dict):
                    raise bad("an operation without a path needs an object", "invalidValue")
                for key, each in value.items():
                    apply(d, op, key, each)
            else:
                apply(d, op, str(path), value)
        self.from_dict(d)
        try:
            with db.transaction.atomic():
                self.save()
        except db.IntegrityError as e:
            raise exceptions.IntegrityError(str(e))


def apply(d, op, path, value):
    """Applies one operation on `path` to the document `d`."""
    holder = d
    if path.startswith(ENTERPRISE):
        rest = path[len(ENTERPRISE):]
        if not rest:
            return put(d, op, ENTERPRISE, value)
        if not rest.startswith(":"):
            raise bad(f"invalid path {path}", "invalidPath")
        holder = d.setdefault(ENTERPRISE, {}) if op != "remove" else d.get(ENTERPRISE, {})
        path = rest[1:]
    elif path.startswith("urn:"):
        raise bad(f"unknown schema in path {path}", "invalidPath")
    m = PATH.match(path)
    if not m:
        raise bad(f"invalid path {path}", "invalidPath")
    attr, key, want, sub = m.group("attr", "key", "want", "sub")
    if attr in READ_ONLY:
        raise bad(f"{attr} cannot be changed", "mutability")
    if key is None and sub is None:
        put(holder, op, attr, value)
    elif key is None:
        inner = holder.get(attr)
        if op == "remove":
            if isinstance(inner, dict):
                inner.pop(sub, None)
        else:
            if not isinstance(inner, dict):
                inner = holder[attr] = {}
            put(inner, op, sub, value)
    else:
        want = want.replace('\\"', '"').replace("\\\\", "\\")
        elements = holder.get(attr)
        chosen = [e for e in elements if matches(e, key, want)] if isinstance(elements, list) else []
        if not chosen:
            raise bad(f"no element of {attr} has {key} {want}", "noTarget")
        if sub is None:
            if op == "remove":
                holder[attr] = [e for e in elements if e not in chosen]
            elif isinstance(value, dict):
                for e in chosen:
                    e.update(value)
            else:
                raise bad(f"{path} takes an object", "invalidValue")
        else:
            for e in chosen:
                put(e, op, sub, value)
    tidy(holder)
    tidy(d)


def put(holder, op, attr, value):
    """add, replace or remove one attribute of an object."""
    if op == "remove" or value is None:
        holder.pop(attr, None)
    elif op == "add" and isinstance(value, list) and isinstance(holder.get(attr), list):
        holder[attr] = holder[attr] + [v for v in value if v not in holder[attr]]
    elif op == "add" and isinstance(value, dict) and isinstance(holder.get(attr), dict):
        holder[attr].update(value)
    else:
        holder[attr] = value


def tidy(holder):
    """Drops attributes left empty (an empty list or object is no value in SCIM)."""
    for key in [k for k, v in holder.items() if v in ([], {})]:
        del holder[key]
