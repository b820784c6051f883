"""The declaration of a REST API source: where it is, how to authenticate, how it pages, where its
records are, and how it is read incrementally.

Plain pydantic models, no Dagster: the ``RestApiSource`` component wraps them, and any process (the
receiver, a CLI) can read and validate a declaration without importing Dagster. Secrets are never
written in a declaration: each one is named by the environment variable that holds it.

A JSON path here is a dotted path of object keys (``items``, ``data.results``); a key that is a
number picks an element of a list (``data.0.id``); an empty path, ``$`` or ``.`` is the body itself.
A leading ``$.`` is accepted and ignored.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PATH = re.compile(r"^(\$|\.|(\$\.)?[^.\s]+(\.[^.\s]+)*)?$")


# Fields checked by name (plain ``str`` annotations: Dagster's component schema takes no validators
# on the types of nested models): every ``*_env`` names an environment variable, these are JSON paths.
# The same for bounds: sizes are positive, starts and margins not negative.
_PATH_FIELDS = frozenset({"cursor_path", "next_url_path", "total_path", "total_pages_path", "path"})
_POSITIVE = frozenset({"limit", "page_size"})
_NOT_NEGATIVE = frozenset({"start", "refresh_margin_seconds"})


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _names_and_paths(self) -> _Spec:
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in _POSITIVE and value is not None and value <= 0:
                raise ValueError(f"{name} must be greater than 0, got {value}")
            if name in _NOT_NEGATIVE and value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")
            if not isinstance(value, str):
                continue
            if name.endswith("_env"):
                _env_name(value)
            elif name in _PATH_FIELDS and not isinstance(self, RestApiSpec):  # RestApiSpec.path is a URL path
                _json_path(value)
        return self


def json_path(path: str) -> tuple[str, ...]:
    """A JSON path (see the module) as its keys; ``()`` is the body itself."""
    if path in ("", "$", "."):
        return ()
    return tuple(path.removeprefix("$.").split("."))


def _json_path(value: str) -> str:
    if not _PATH.match(value):
        raise ValueError(f"{value!r} is not a JSON path: keys joined by dots, e.g. 'data.results'")
    return value


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(
            f"names an environment variable (e.g. 'GITHUB_TOKEN'), not a secret: {value[:3]!r}... is not a "
            "variable name. Secrets are never written in a declaration."
        )
    return value


JsonPath = str  # checked by _Spec (see _PATH_FIELDS)
EnvVar = str  # checked by _Spec: every *_env field


class BearerAuth(_Spec):
    """``Authorization: Bearer <token>``, the token read from an environment variable."""

    type: Literal["bearer"] = Field(description="Bearer token authentication.")
    token_env: EnvVar = Field(description="The environment variable that holds the token.")


class ApiKeyAuth(_Spec):
    """An API key sent as a header or a query parameter, read from an environment variable."""

    type: Literal["api_key"] = Field(description="API key authentication.")
    name: str = Field(description="The header's or the query parameter's name, e.g. 'X-API-Key' or 'api_key'.")
    location: Literal["header", "query"] = Field(
        default="header", description="Where the key goes: a request header, or a query parameter."
    )
    value_env: EnvVar = Field(description="The environment variable that holds the key.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be empty: it is the header or query parameter that carries the key")
        return value


class BasicAuth(_Spec):
    """HTTP Basic authentication (RFC 7617), the password read from an environment variable."""

    type: Literal["basic"] = Field(description="HTTP Basic authentication.")
    username: str = Field(description="The user name (not a secret).")
    password_env: EnvVar = Field(description="The environment variable that holds the password.")


class OAuth2ClientCredentialsAuth(_Spec):
    """OAuth 2.0 client credentials grant (RFC 6749 §4.4): a token fetched from ``token_url``, cached,
    fetched again before it expires (and once more if the API answers 401 mid-run)."""

    type: Literal["oauth2_client_credentials"] = Field(description="OAuth 2.0 client credentials grant.")
    token_url: str = Field(description="The authorization server's token endpoint (absolute http(s) URL).")
    client_id: str = Field(description="The client identifier (not a secret).")
    client_secret_env: EnvVar = Field(description="The environment variable that holds the client secret.")
    scopes: list[str] = Field(
        default_factory=list, description="Scopes requested (sent space-separated); none: the server's default."
    )
    audience: str | None = Field(
        default=None, description="An 'audience' form parameter some servers require (Auth0, Okta); none: not sent."
    )
    client_auth: Literal["basic", "body"] = Field(
        default="basic",
        description="How the client authenticates to the token endpoint (RFC 6749 §2.3.1): HTTP Basic "
        "(recommended), or client_id and client_secret in the form body.",
    )
    refresh_margin_seconds: float = Field(
        default=60.0,
        description="Fetch a new token this long before the current one expires (its expires_in), so "
        "that no request goes out with a token about to expire; a token is kept at least half its life.",
    )

    @field_validator("token_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value, "token_url")


Auth = Annotated[
    BearerAuth | ApiKeyAuth | BasicAuth | OAuth2ClientCredentialsAuth,
    Field(description="How requests authenticate; none: anonymous."),
]


# ----------------------------------------------------------------------------------------- paginators


class CursorPaginator(_Spec):
    """The next page's cursor is read from the body (a JSON path) or a response header, and sent back
    as a query parameter; no cursor (absent, null or empty) ends the pages."""

    type: Literal["cursor"] = Field(description="Cursor pagination.")
    cursor_path: JsonPath | None = Field(
        default=None, description="JSON path to the next cursor in the body, e.g. 'meta.next_cursor'."
    )
    cursor_header: str | None = Field(
        default=None, description="Response header holding the next cursor, e.g. 'X-Next-Cursor'."
    )
    cursor_param: str = Field(default="cursor", description="Query parameter the cursor is sent in.")
    limit_param: str | None = Field(default=None, description="Query parameter for the page size; none: not sent.")
    limit: int | None = Field(default=None, description="Records per page, sent in limit_param.")

    @model_validator(mode="after")
    def _one_source(self) -> CursorPaginator:
        if (self.cursor_path is None) == (self.cursor_header is None):
            raise ValueError(
                "the cursor paginator reads the next cursor from exactly one place: set cursor_path "
                "(a JSON path in the body) or cursor_header (a response header), not both and not neither"
            )
        _limit_pair(self.limit_param, self.limit, "cursor")
        return self


class NextUrlPaginator(_Spec):
    """The body holds the next page's URL (absolute, or relative to the current one); none ends the pages."""

    type: Literal["next_url"] = Field(description="Next-URL pagination.")
    next_url_path: JsonPath = Field(description="JSON path to the next page's URL in the body, e.g. 'links.next'.")

    @field_validator("next_url_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not json_path(value):
            raise ValueError("next_url_path must point into the body, e.g. 'links.next', not at the body itself")
        return value


class LinkHeaderPaginator(_Spec):
    """The next page's URL is the ``Link`` header's link with ``rel="next"`` (RFC 8288, as GitHub sends it)."""

    type: Literal["link_header"] = Field(description="Link header pagination.")
    rel: str = Field(default="next", description="The relation of the link to follow.")


class OffsetPaginator(_Spec):
    """``offset`` and ``limit`` query parameters; the pages end at a short page, or when the offset
    reaches the total read from total_path."""

    type: Literal["offset"] = Field(description="Offset/limit pagination.")
    limit: int = Field(description="Records per page.")
    offset_param: str = Field(default="offset", description="Query parameter of the offset.")
    limit_param: str = Field(default="limit", description="Query parameter of the page size.")
    start: int = Field(default=0, description="The first page's offset.")
    total_path: JsonPath | None = Field(
        default=None, description="JSON path to the total number of records in the body; none: stop at a short page."
    )


class PageNumberPaginator(_Spec):
    """A page number query parameter; the pages end at an empty page, or after the number of pages
    read from total_pages_path."""

    type: Literal["page_number"] = Field(description="Page number pagination.")
    page_param: str = Field(default="page", description="Query parameter of the page number.")
    start: int = Field(default=1, description="The first page's number (1, or 0 for zero-based APIs).")
    page_size_param: str | None = Field(default=None, description="Query parameter of the page size; none: not sent.")
    page_size: int | None = Field(default=None, description="Records per page, sent in page_size_param.")
    total_pages_path: JsonPath | None = Field(
        default=None, description="JSON path to the number of pages in the body; none: stop at an empty page."
    )

    @model_validator(mode="after")
    def _check(self) -> PageNumberPaginator:
        _limit_pair(self.page_size_param, self.page_size, "page_number", names=("page_size_param", "page_size"))
        return self


class SinglePagePaginator(_Spec):
    """One request answers everything."""

    type: Literal["single_page"] = Field(description="No pagination: one request.")


Paginator = Annotated[
    CursorPaginator
    | NextUrlPaginator
    | LinkHeaderPaginator
    | OffsetPaginator
    | PageNumberPaginator
    | SinglePagePaginator,
    Field(description="How the API pages its records."),
]


def _limit_pair(
    param: str | None, size: int | None, paginator: str, names: tuple[str, str] = ("limit_param", "limit")
) -> None:
    if (param is None) != (size is None):
        raise ValueError(f"the {paginator} paginator's {names[0]} and {names[1]} go together: set both or neither")


_AUTH_TYPES: dict[str, type[_Spec]] = {
    "bearer": BearerAuth,
    "api_key": ApiKeyAuth,
    "basic": BasicAuth,
    "oauth2_client_credentials": OAuth2ClientCredentialsAuth,
}
_PAGINATOR_TYPES: dict[str, type[_Spec]] = {
    "cursor": CursorPaginator,
    "next_url": NextUrlPaginator,
    "link_header": LinkHeaderPaginator,
    "offset": OffsetPaginator,
    "page_number": PageNumberPaginator,
    "single_page": SinglePagePaginator,
}


# -------------------------------------------------------------------------------- records, incremental


class RecordsSpec(_Spec):
    """Where a response's records are."""

    format: Literal["json", "ndjson"] = Field(
        default="json",
        description="'json': one JSON document per response, the records a list at path; 'ndjson': one "
        "record per line (JSON lines), the whole body.",
    )
    path: JsonPath = Field(
        default="",
        description="With format json: JSON path to the list of records, e.g. 'items' or 'data.results'; "
        "empty: the body is the list.",
    )

    @model_validator(mode="after")
    def _check(self) -> RecordsSpec:
        if self.format == "ndjson" and self.path:
            raise ValueError("records.path is for format 'json'; an NDJSON body is the list of records itself")
        return self


class IncrementalSpec(_Spec):
    """Read only what changed: the largest value of ``cursor_field`` landed is sent back in ``param``
    on the next run (as the API expects it, an ISO timestamp or a number as text)."""

    cursor_field: str = Field(description="The record field that grows as records change, e.g. 'updated_at'.")
    param: str = Field(description="Query parameter that asks for records from a value on, e.g. 'updated_since'.")
    initial_value: str | None = Field(
        default=None, description="Value sent on the first run; none: the first run reads everything."
    )
    end_param: str | None = Field(
        default=None,
        description="Query parameter that bounds a window from above (a backfill), e.g. 'updated_before'; none: not supported.",
    )


# -------------------------------------------------------------------------------------------- the API


class RestApiSpec(_Spec):
    """A REST API resource to read: ``GET {base_url}{path}`` with static params and headers, page by page."""

    base_url: str = Field(description="Root URL of the API, e.g. 'https://api.github.com'.")
    path: str = Field(default="", description="Path of the resource, appended to base_url, e.g. '/v1/orders'.")
    params: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="Query parameters of the first request (numbers as their text); the cursor, offset and "
        "page-number paginators keep them, a next URL or Link header replaces them.",
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Headers sent with every request (no secrets: use auth)."
    )
    auth: Auth | None = Field(default=None, description="How requests authenticate; none: anonymous.")
    paginator: Paginator = Field(
        default_factory=lambda: SinglePagePaginator(type="single_page"),
        description="How the API pages its records; default: a single page.",
    )
    records: RecordsSpec = Field(default_factory=RecordsSpec, description="Where the records are in a response.")
    incremental: IncrementalSpec | None = Field(
        default=None, description="Incremental reading; none: every run reads everything."
    )

    @model_validator(mode="before")
    @classmethod
    def _variant_by_type(cls, data: Any) -> Any:
        """``auth`` and ``paginator`` are read as the variant their ``type`` names, so a mistake is
        reported against that variant alone (the unions carry no pydantic discriminator: Dagster's
        component schema cannot take one)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for field, variants in (("auth", _AUTH_TYPES), ("paginator", _PAGINATOR_TYPES)):
            value = data.get(field)
            if not isinstance(value, dict):
                continue
            kind = value.get("type")
            if kind not in variants:
                raise ValueError(f"{field}.type {kind!r} is not one of " + ", ".join(repr(name) for name in variants))
            try:
                data[field] = variants[kind].model_validate(value)
            except ValidationError as error:
                problems = "; ".join(
                    f"{'.'.join(str(part) for part in issue['loc']) or field}: {issue['msg']}"
                    for issue in error.errors()
                )
                raise ValueError(f"{field} ({kind}): {problems}") from None
        return data

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value, "base_url")

    @field_validator("params", mode="before")
    @classmethod
    def _params_as_text(cls, value: Any) -> Any:
        # A query is text; YAML (and Dagster's templating of a defs.yaml) reads `limit: 100` as a number.
        if isinstance(value, dict):
            return {
                key: str(item).lower()
                if isinstance(item, bool)
                else str(item)
                if isinstance(item, (int, float))
                else item
                for key, item in value.items()
            }
        return value

    @field_validator("headers")
    @classmethod
    def _no_secret_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name.lower() in ("authorization", "proxy-authorization", "cookie"):
                raise ValueError(
                    f"header {name!r} carries credentials: declare them under auth, which reads them "
                    "from an environment variable, instead of writing them in headers"
                )
        return value

    @model_validator(mode="after")
    def _check(self) -> RestApiSpec:
        reads_body = self.paginator_body_path
        if self.records.format == "ndjson" and reads_body:
            raise ValueError(
                f"the {self.paginator.type} paginator reads {reads_body!r} from a JSON body, but records "
                "are NDJSON (no single document to read it from): read it from a header, or drop it"
            )
        if self.incremental is not None and self.incremental.param in self.params:
            raise ValueError(
                f"incremental.param {self.incremental.param!r} is also a static param: the incremental "
                "value would be overwritten; remove it from params"
            )
        return self

    @property
    def paginator_body_path(self) -> str | None:
        """The JSON path the paginator reads from a response's body, if any."""
        for name in ("cursor_path", "next_url_path", "total_path", "total_pages_path"):
            if value := getattr(self.paginator, name, None):
                return value
        return None

    @property
    def url(self) -> str:
        """The first request's URL (without the query)."""
        return self.base_url.rstrip("/") + ("/" + self.path.lstrip("/") if self.path else "")

    def secret_envs(self) -> list[str]:
        """The environment variables this source reads its secrets from."""
        auth: Any = self.auth
        return [
            getattr(auth, name)
            for name in ("token_env", "value_env", "password_env", "client_secret_env")
            if hasattr(auth, name)
        ]


def _check_url(value: str, field: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{field} must be an absolute http(s) URL, e.g. 'https://api.example.com': got {value!r}")
    if parts.username or parts.password:
        raise ValueError(f"{field} must not hold credentials: declare them under auth")
    return value
