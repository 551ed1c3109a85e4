"""One module per step kind. Each module defines:

- ``VERSION``: bump when the output for the same inputs changes;
- ``LIBS``: distributions whose versions enter the cache key;
- ``Params``: a dataclass of accepted params (unknown keys rejected), optional ``validate()``;
- ``run(ctx)``: a pure function of ``ctx.params`` and ``ctx.inputs`` writing into ``ctx.out``.
"""
