"""m:Restriction and m:SortOrder elements into the store's query AST.

A restriction with an unknown element is a schema violation (a SOAP fault); a FieldURI the simulator
cannot search is ErrorUnsupportedPathForQuery; comparing a field with another field (FieldURIOrConstant
holding a FieldURI) is refused with ErrorUnsupportedQueryFilter, as the simulator has no use for it.
"""

from __future__ import annotations

from lxml import etree

from exchange_simulator.codec import extended
from exchange_simulator.codec.soap import NS_T, schema_fault
from exchange_simulator.errors import EwsError
from exchange_simulator.store import query
from exchange_simulator.store.finding import SortKey

_T = f"{{{NS_T}}}"
_COMPARISONS = frozenset(
    {
        "IsEqualTo",
        "IsNotEqualTo",
        "IsGreaterThan",
        "IsGreaterThanOrEqualTo",
        "IsLessThan",
        "IsLessThanOrEqualTo",
    }
)
_CONTAINMENT_MODES = frozenset({"FullString", "Prefixed", "Substring", "PrefixOnWords", "ExactPhrase"})


def parse_restriction(element: etree._Element) -> query.Node:
    """The single search expression inside m:Restriction."""
    children = [c for c in element if isinstance(c.tag, str)]
    if len(children) != 1:
        raise schema_fault("The element 'Restriction' must contain exactly one search expression.")
    return _expression(children[0])


def _field_uri(element: etree._Element) -> query.Field:
    """The property an expression tests: a FieldURI or IndexedFieldURI, or an extended property (searched on
    the value a client set, or on the one the store computes)."""
    path = next((c for c in element if isinstance(c.tag, str)), None)
    if path is None:
        raise schema_fault(f"The element '{etree.QName(element).localname}' is missing a property path.")
    local = etree.QName(path).localname
    if local == "ExtendedFieldURI":
        parsed = extended.parse_path(path)
        return query.ExtendedField(parsed.key, parsed.property_type)
    if local == "FieldURI":
        uri = path.get("FieldURI", "")
    else:
        uri = f"{path.get('FieldURI', '')}:{path.get('FieldIndex', '')}"
    query.check_field(uri)
    return uri


def _expression(element: etree._Element) -> query.Node:
    local = etree.QName(element).localname
    if local in ("And", "Or"):
        parts = tuple(_expression(c) for c in element if isinstance(c.tag, str))
        if not parts:
            raise schema_fault(f"The element '{local}' has incomplete content.")
        return query.And(parts) if local == "And" else query.Or(parts)
    if local == "Not":
        parts = [c for c in element if isinstance(c.tag, str)]
        if len(parts) != 1:
            raise schema_fault("The element 'Not' must contain exactly one search expression.")
        return query.Not(_expression(parts[0]))
    if local == "Exists":
        return query.Exists(_field_uri(element))
    if local == "Contains":
        field = _field_uri(element)
        constant = element.find(f"{_T}Constant")
        if constant is None:
            raise schema_fault("The element 'Contains' is missing its 'Constant' child.")
        mode = element.get("ContainmentMode", "Substring")
        if mode not in _CONTAINMENT_MODES:
            raise schema_fault(f"The 'ContainmentMode' attribute has an invalid value '{mode}'.")
        comparison = element.get("ContainmentComparison", "Exact")
        ignore_case = "IgnoreCase" in comparison or "Loose" in comparison
        return query.Contains(field, constant.get("Value", ""), mode, ignore_case)
    if local in _COMPARISONS:
        field = _field_uri(element)
        operand = element.find(f"{_T}FieldURIOrConstant")
        constant = operand.find(f"{_T}Constant") if operand is not None else None
        if constant is None:
            if operand is not None and len(operand):
                raise EwsError(
                    "ErrorUnsupportedQueryFilter",
                    "The query filter compares two properties, which is not supported.",
                )
            raise schema_fault(f"The element '{local}' is missing 'FieldURIOrConstant'.")
        return query.Compare(local, field, query.convert_constant(field, constant.get("Value", "")))
    raise schema_fault(f"The element '{local}' is not a valid search expression.")


def parse_sort_order(element: etree._Element | None) -> tuple[SortKey, ...]:
    """m:SortOrder's t:FieldOrder elements; an unsortable property is ErrorUnsupportedPathForSortGroup."""
    if element is None:
        return ()
    keys: list[SortKey] = []
    for order in element.findall(f"{_T}FieldOrder"):
        path = order.find(f"{_T}FieldURI")
        uri = path.get("FieldURI", "") if path is not None else ""
        if uri not in query.FIELDS:
            raise EwsError(
                "ErrorUnsupportedPathForSortGroup",
                "The property path is not supported for sorting or grouping.",
                values={"FieldURI": uri},
            )
        keys.append(SortKey(uri, order.get("Order", "Ascending") == "Descending"))
    return tuple(keys)
