"""Docket: document extraction as a service.

The package stays light on purpose: the pure stages (``service.ingest``,
``service.extract``, ``service.validate``, ...) are imported by training and
the CLI without pulling in Flask. The app factory lives in :mod:`service.app`;
``from service import create_app`` still works.
"""

def __getattr__(name: str):
    if name == "create_app":
        from service.app import create_app

        return create_app
    raise AttributeError(f"module 'service' has no attribute {name!r}")
