"""The record query language: parse text into a tree, evaluate it on a record document.

``parse`` (parser.py) is the grammar, ``matches`` (evaluate.py) the reference
semantics every backend must reproduce; ``search`` (search.py) runs a query over
any backend, through its ``sumatra_search_records`` hook when it has one.
"""

from .evaluate import matches
from .parser import MAX_LENGTH, QueryError, parse
from .tree import And, Compare, Exists, Has, In, Node, Not, Or

__all__ = ["MAX_LENGTH", "And", "Compare", "Exists", "Has", "In", "Node", "Not", "Or",
           "QueryError", "matches", "parse"]
