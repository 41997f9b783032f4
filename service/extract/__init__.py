"""The extraction engine: a fine-tuned small model decoded under the document type's schema.

Public surface: :func:`load_engine` gives an :class:`Engine`; ``engine.extract``
takes a :class:`~service.doctypes.DocumentType` and an
:class:`~service.ingest.IngestedDocument` and returns an
:class:`~service.extract.result.Extraction`.
"""

from service.extract.result import Evidence, Extraction, FieldResult

__all__ = ["Evidence", "Extraction", "FieldResult"]
