"""OData `$filter` for Graph: the subset Outlook and the directory accept, parsed and compiled to predicates.

Grammar (keywords and property names are case-insensitive, as Graph reads them):
    expr    := and ("or" and)*
    and     := unary ("and" unary)*
    unary   := "not" unary | "(" expr ")" | compare | call | lambda
    compare := path ("eq"|"ne"|"gt"|"ge"|"lt"|"le") literal
    call    := ("contains"|"startswith"|"endswith") "(" path "," literal ")"
    lambda  := path "/" ("any"|"all") "(" name ":" expr ")"   (inside, paths start with the name)
    literal := 'text' ('' escapes a quote) | true | false | null | number | 2024-05-01[T08:00:00Z]
`all` and anything else parses but is refused when compiled, with the resource's "unsupported" error.

Semantics are the store's (exchange_simulator.store.query), so EWS restrictions and Graph filters agree:
strings compare case-insensitively, a comparison on a missing value is false (`eq null` and `ne null` test
for absence), date-times compare as instants. `Schema` names a resource's filterable properties; each
maps to a type and an accessor, and a collection property (recipients, categories) to the schema of its
elements, for lambdas. Compiling returns a plain function of the object, which is the fastest predicate
Python offers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from exchange_simulator.graph.errors import GraphError

_COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
_FUNCTIONS = ("contains", "startswith", "endswith")
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^']|'')*')
    | (?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<name>[A-Za-z_][\w.]*(?:/[A-Za-z_][\w.]*)*)
    | (?P<punct>[(),:/])
    )""",
    re.VERBOSE,
)


# ---- the AST -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Compare:
    op: str
    path: str  # lower case, e.g. "from/emailaddress/address"
    value: object


@dataclass(frozen=True)
class Call:
    function: str
    path: str
    value: object


@dataclass(frozen=True)
class Lambda:
    path: str  # the collection
    quantifier: str  # any | all
    variable: str
    body: Node


@dataclass(frozen=True)
class Logical:
    op: str  # and | or
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Negation:
    child: Node


Node = Compare | Call | Lambda | Logical | Negation


# ---- schemas -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Schema:
    """Filterable properties of a resource: path -> (type, accessor), collections -> element schema."""

    type_name: str  # e.g. "microsoft.graph.message", for error messages
    # path -> (type, accessor) or (type, accessor, normaliser of string literals compared with it)
    properties: dict[str, tuple]
    collections: dict[str, tuple[Callable[[object], list], Schema | type]] = field(default_factory=dict)
    # The error for a construct the resource does not support (e.g. `endswith` on messages).
    unsupported: Callable[[str], GraphError] = lambda what: GraphError(
        400, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes."
    )
    # The error for a syntax or typing mistake.
    invalid: Callable[[str], GraphError] = lambda message: GraphError(400, "BadRequest", message)


@dataclass(frozen=True)
class CompiledFilter:
    predicate: Callable[[object], bool]
    paths: tuple[str, ...]  # properties in order of first appearance (for Outlook's $orderby rule)
    tree: Node


# ---- parsing -----------------------------------------------------------------------------------------------
class _Parser:
    def __init__(self, text: str, schema: Schema) -> None:
        self.text = text
        self.schema = schema
        self.tokens = self._tokenize(text)
        self.position = 0

    def _tokenize(self, text: str) -> list[tuple[str, str]]:
        tokens: list[tuple[str, str]] = []
        index = 0
        while index < len(text):
            if text[index:].strip() == "":
                break
            match = _TOKEN.match(text, index)
            if match is None or match.end() == index:
                raise self.schema.invalid(
                    f"Invalid filter clause: syntax error at position {index} in '{text}'."
                )
            kind = match.lastgroup or ""
            tokens.append((kind, match.group(kind)))
            index = match.end()
        return tokens

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise self._error("unexpected end of the expression")
        self.position += 1
        return token

    def _expect(self, value: str) -> None:
        text = self._take()[1]
        if text.lower() != value:
            raise self._error(f"'{value}' expected, found '{text}'")

    def _keyword(self, *words: str) -> str | None:
        token = self._peek()
        if token is not None and token[0] == "name" and token[1].lower() in words:
            self.position += 1
            return token[1].lower()
        return None

    def _error(self, what: str) -> GraphError:
        return self.schema.invalid(f"Invalid filter clause: {what} in '{self.text}'.")

    def parse(self) -> Node:
        node = self._or()
        if self._peek() is not None:
            raise self._error(f"unexpected '{self._peek()[1]}'")  # type: ignore[index]
        return node

    def _or(self) -> Node:
        children = [self._and()]
        while self._keyword("or"):
            children.append(self._and())
        return children[0] if len(children) == 1 else Logical("or", tuple(children))

    def _and(self) -> Node:
        children = [self._unary()]
        while self._keyword("and"):
            children.append(self._unary())
        return children[0] if len(children) == 1 else Logical("and", tuple(children))

    def _unary(self) -> Node:
        if self._keyword("not"):
            return Negation(self._unary())
        token = self._take()
        if token == ("punct", "("):
            node = self._or()
            self._expect(")")
            return node
        kind, text = token
        if kind != "name":
            raise self._error(f"a property expected, found '{text}'")
        lowered = text.lower()
        following = self._peek()
        if lowered in _FUNCTIONS and following == ("punct", "("):
            self._take()
            path = self._path()
            self._expect(",")
            value = self._literal()
            self._expect(")")
            return Call(lowered, path, value)
        head, _, quantifier = lowered.rpartition("/")
        if quantifier in ("any", "all") and head and following == ("punct", "("):
            self._take()
            variable = self._take()[1].lower()
            self._expect(":")
            body = self._or()
            self._expect(")")
            return Lambda(head, quantifier, variable, body)
        operator = self._keyword(*_COMPARISONS)
        if operator is None:
            raise self._error(f"an operator expected after '{text}'")
        return Compare(operator, lowered, self._literal())

    def _path(self) -> str:
        kind, text = self._take()
        if kind != "name":
            raise self._error(f"a property expected, found '{text}'")
        return text.lower()

    def _literal(self) -> object:
        kind, text = self._take()
        if kind == "string":
            return text[1:-1].replace("''", "'")
        if kind == "number":
            return float(text) if "." in text else int(text)
        if kind == "datetime":
            return _datetime(text)
        if kind == "name" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        if kind == "name" and text.lower() == "null":
            return None
        raise self._error(f"a literal expected, found '{text}'")


def _datetime(text: str) -> datetime:
    if "T" not in text:
        day = date.fromisoformat(text)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse(text: str, schema: Schema) -> Node:
    return _Parser(text, schema).parse()


# ---- compiling ---------------------------------------------------------------------------------------------
def compile_filter(text: str, schema: Schema) -> CompiledFilter:
    tree = parse(text, schema)
    paths: list[str] = []
    predicate = _compile(tree, schema, schema, None, paths)
    return CompiledFilter(predicate, tuple(dict.fromkeys(paths)), tree)


def _compile(
    node: Node, root: Schema, schema: Schema | type, variable: str | None, paths: list[str]
) -> Callable[[object], bool]:
    if isinstance(node, Logical):
        children = [_compile(c, root, schema, variable, paths) for c in node.children]
        if node.op == "and":
            return lambda obj: all(child(obj) for child in children)
        return lambda obj: any(child(obj) for child in children)
    if isinstance(node, Negation):
        child = _compile(node.child, root, schema, variable, paths)
        return lambda obj: not child(obj)
    if isinstance(node, Lambda):
        return _compile_lambda(node, root, schema, variable, paths)
    kind, accessor, *normaliser = _property(node.path, root, schema, variable, paths)
    if isinstance(node, Call):
        if not isinstance(node.value, str) or kind is not str:
            raise root.invalid(f"The function '{node.function}' needs a string property and a string value.")
        return _string_function(node.function, accessor, node.value)
    if normaliser and isinstance(node.value, str):
        node = Compare(node.op, node.path, normaliser[0](node.value))
    return _comparison(node, kind, accessor, root)


def _property(
    path: str, root: Schema, schema: Schema | type, variable: str | None, paths: list[str]
) -> tuple:
    if variable is not None:
        if path == variable and isinstance(schema, type):
            return schema, lambda value: value
        prefix = f"{variable}/"
        if not path.startswith(prefix) or not isinstance(schema, Schema):
            raise root.invalid(f"Could not find a property named '{path}' on type '{root.type_name}'.")
        path = path[len(prefix) :]
        found = schema.properties.get(path)
    else:
        assert isinstance(schema, Schema)
        paths.append(path)
        found = schema.properties.get(path)
        if found is None and path in schema.collections:
            raise root.unsupported(path)
    if found is None:
        raise root.invalid(f"Could not find a property named '{path}' on type '{root.type_name}'.")
    return found


def _compile_lambda(
    node: Lambda, root: Schema, schema: Schema | type, variable: str | None, paths: list[str]
) -> Callable[[object], bool]:
    if variable is not None or not isinstance(schema, Schema) or node.path not in schema.collections:
        raise root.invalid(f"Could not find a property named '{node.path}' on type '{root.type_name}'.")
    if node.quantifier != "any":
        raise root.unsupported("all")
    paths.append(node.path)
    elements, element_schema = schema.collections[node.path]
    body = _compile(node.body, root, element_schema, node.variable, [])
    return lambda obj: any(body(element) for element in elements(obj))


def _string_function(function: str, accessor: Callable[[object], object], value: str) -> Callable:
    wanted = value.lower()

    def test(obj: object) -> bool:
        found = accessor(obj)
        if not isinstance(found, str):
            return False
        found = found.lower()
        if function == "contains":
            return wanted in found
        if function == "startswith":
            return found.startswith(wanted)
        return found.endswith(wanted)

    return test


def _comparison(node: Compare, kind: type, accessor: Callable[[object], object], root: Schema) -> Callable:
    constant = node.value
    op = node.op
    if constant is None:
        if op not in ("eq", "ne"):
            raise root.invalid(f"The operator '{op}' cannot compare with null.")
        return (lambda obj: accessor(obj) is None) if op == "eq" else (lambda obj: accessor(obj) is not None)
    if not isinstance(constant, _LITERAL_TYPES[kind]) or (kind is not bool and isinstance(constant, bool)):
        raise root.invalid(
            f"A binary operator with incompatible types was detected. Found operand types "
            f"'{_edm(kind)}' and '{_edm(type(constant))}' for operator kind '{op}'."
        )
    if isinstance(constant, str):
        constant = constant.lower()
    compare = _OPERATORS[op]

    def test(obj: object) -> bool:
        value = accessor(obj)
        if value is None:
            return False
        if isinstance(value, str):
            value = value.lower()
        return compare(value, constant)

    return test


_LITERAL_TYPES: dict[type, type | tuple[type, ...]] = {
    str: str,
    bool: bool,
    datetime: datetime,
    int: (int, float),
}
_OPERATORS: dict[str, Callable[[object, object], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,  # type: ignore[operator]
    "ge": lambda a, b: a >= b,  # type: ignore[operator]
    "lt": lambda a, b: a < b,  # type: ignore[operator]
    "le": lambda a, b: a <= b,  # type: ignore[operator]
}


def _edm(kind: type) -> str:
    return {str: "Edm.String", bool: "Edm.Boolean", datetime: "Edm.DateTimeOffset", int: "Edm.Int32"}.get(
        kind, "Edm.Double"
    )
