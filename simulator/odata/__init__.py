"""The ``$filter`` language of Graph's ``/users``: ``lexer`` (tokens), ``parser`` (the grammar,
with ``checks`` for types and names), ``advanced`` (what needs advanced query mode) and
``evaluate`` (a parsed filter against a user)."""

from .advanced import ADVANCED_QUERY_HINT, advanced_operators, advanced_properties
from .evaluate import matches
from .lexer import Token, tokenize
from .nodes import FilterError, Node
from .parser import parse_filter

__all__ = [
    "ADVANCED_QUERY_HINT",
    "FilterError",
    "Node",
    "Token",
    "advanced_operators",
    "advanced_properties",
    "matches",
    "parse_filter",
    "tokenize",
]
