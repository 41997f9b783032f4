"""Refuse requests that carry NUL characters, before any view runs.

PostgreSQL can neither store nor compare a string holding NUL (psycopg
raises before the query is sent), so a ``%00`` in a path, a query argument, a
header or a form field would otherwise surface as a 500 from deep inside a
query. No legitimate client sends one; the answer is a 400 that says so.
Bodies other than HTML forms are left to the views: uploads are read only
after the API key is checked, and JSON text goes through ingestion.
"""

from __future__ import annotations

from flask import Flask, request

from service.exceptions import BadRequest

NUL = "\x00"
FORM = "application/x-www-form-urlencoded"


def refuse_nul() -> None:
    where = None
    if NUL in request.path:
        where = "the path"
    elif any(NUL in k or NUL in v for k, v in request.args.items(multi=True)):
        where = "the query string"
    elif any(NUL in k or NUL in v for k, v in request.headers.items()):
        where = "a header"
    elif request.mimetype == FORM and any(NUL in k or NUL in v for k, v in request.form.items(multi=True)):
        where = "a form field"
    if where:
        raise BadRequest(f"The request carries a NUL character in {where}; no Docket value can hold one.")


def init_app(app: Flask) -> None:
    app.before_request(refuse_nul)
