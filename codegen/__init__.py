"""gridbind.codegen: turns ``specs/`` into ``generated/``.

The 8-2 XSDs become typed xsdata dataclasses (:mod:`gridbind.codegen.xsd`); the declarative STTP
descriptions (``specs/sttp/*.yaml``, language in ``specs/sttp/README.md``) become construct
parsers/builders and typed message classes through jinja2 templates:

- :mod:`~gridbind.codegen.spec` reads and checks a spec (one-line :class:`SpecError` on problems),
- :mod:`~gridbind.codegen.sttp` renders a checked spec into a module,
- :mod:`~gridbind.codegen.metadata` compiles the Appendix F metadata templates,
- :mod:`~gridbind.codegen.pipeline` regenerates or checks the whole ``generated/`` tree,
- :mod:`~gridbind.codegen.cli` is ``gridbind codegen {xsd,sttp,all}``.

The generated modules import only the runtime (:mod:`gridbind.sttp.codecsupport`), never this
package: ``pip install gridbind`` runs them without the ``codegen`` extra.
"""

from gridbind.codegen.errors import CodegenError, SpecError

__all__ = ["CodegenError", "SpecError"]
