"""Semantic checks of parsed modules (work in progress: names only)."""

from __future__ import annotations

from . import ast
from .errors import Diagnostic
from .parser import source_line


def check_modules(modules, sources):
    ansatze, models, diags = {}, {}, []
    where = {}
    for filename, module in modules:
        for item in module.items:
            if isinstance(item, (ast.Ansatz, ast.Model)):
                if item.name in where:
                    diags.append(Diagnostic("error", f"duplicate name '{item.name}': already defined at {where[item.name]}", item.span, source_line(sources[filename], item.span.line)))
                    continue
                where[item.name] = item.span
                (ansatze if isinstance(item, ast.Ansatz) else models)[item.name] = item
    return ansatze, models, diags
