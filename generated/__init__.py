"""gridbind.generated: code written by ``gridbind codegen all``. Never edit by hand."""
