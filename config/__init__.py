"""Docket's configuration: the typed settings object and the document-type schemas."""

from config.settings import Settings, get_settings

__all__ = ["Settings", "get_settings"]
