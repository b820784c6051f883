"""A declarative REST API client: a source declared (``spec``, no Dagster) and read page by page (``client``)."""

from .spec import RestApiSpec

__all__ = ["RestApiSpec"]
