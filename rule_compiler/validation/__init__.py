"""Validation: a raw document in, a valid definition out, or every problem at once with its JSON path.

The entry points live in :mod:`.document`; each kind's meaning checks in :mod:`.kind_checks`, named by
the kinds table (:mod:`rule_compiler.kinds`). Exports load lazily, so that importing one check module
does not import the kinds table (which imports the checks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rule_compiler._lazy import lazy_exports

if TYPE_CHECKING:
    from rule_compiler.validation.document import check_document, validate_definition, validate_document
    from rule_compiler.validation.kind_checks import CheckContext, Definition, Validated

__getattr__ = lazy_exports(
    __name__,
    {
        "check_document": "document",
        "validate_definition": "document",
        "validate_document": "document",
        "CheckContext": "kind_checks",
        "Definition": "kind_checks",
        "Validated": "kind_checks",
    },
)

__all__ = [
    "CheckContext",
    "Definition",
    "Validated",
    "check_document",
    "validate_definition",
    "validate_document",
]
