"""The RE2 pattern cache keeps a bounded amount of memory."""

from __future__ import annotations

from gridbind.sttp.expressions import compile_expression
from gridbind.sttp.expressions.regex import _MAX_MEMORY, _OPTIONS, _compile


def test_cache_holds_few_patterns_of_bounded_memory():
    _compile.cache_clear()
    for i in range(100):
        assert compile_expression(f"RegexMatch('x{i}[a-z]{{3,60}}', 'x{i}abc')").evaluate()
    info = _compile.cache_info()
    assert info.currsize <= 32 and info.maxsize <= 32
    assert _OPTIONS.max_mem == _MAX_MEMORY <= 1 << 20
    # a pattern whose automaton wants more than the cap still matches (RE2 falls back)
    pattern = "(" + "|".join(f"[a-z]{{{n}}}x{n}" for n in range(40, 60)) + ")"
    assert compile_expression(f"RegexMatch('{pattern}', '{'q' * 45}x45')").evaluate()
