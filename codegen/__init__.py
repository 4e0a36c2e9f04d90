"""gridbind.codegen: turns ``specs/`` into ``generated/``.

The 8-2 XSDs become typed xsdata dataclasses; the declarative STTP descriptions become construct
parsers/builders and typed message classes through jinja2 templates.
"""
