"""The QVAF language: parse, check, format and load ``.qvaf`` specs.

Example::

    >>> import qvaf.dsl as dsl
    >>> program = dsl.program_from_text("ansatz a { h\\n measure z }")
    >>> list(program.ansatze)
    ['a']
"""

from . import ast, consteval
from .consteval import ConstError, bind_args, eval_const, eval_int
from .errors import Diagnostic, QvafError, SpecError
from .fmt import format_expr, format_module, format_source
from .parser import parse
from .program import Program, SourceError, check, load_program, program_from_text, read_source

__all__ = [
    "ConstError",
    "Diagnostic",
    "Program",
    "QvafError",
    "SourceError",
    "SpecError",
    "ast",
    "bind_args",
    "check",
    "consteval",
    "eval_const",
    "eval_int",
    "format_expr",
    "format_module",
    "format_source",
    "load_program",
    "parse",
    "program_from_text",
    "read_source",
]
