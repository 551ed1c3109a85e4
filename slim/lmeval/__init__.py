"""lm-eval integration: an in-process llama.cpp ``LM`` and ``run_lm_eval`` for any artifact.

    from slim.lmeval.run import run_lm_eval
    run_lm_eval("builds/x/model.gguf", ["data/lm_eval/slim_facts/slim_facts.yaml"], limit=8)

Imports lm-eval lazily: ``slim.lmeval.llamacpp_lm`` registers ``slim-llamacpp``.
"""


def run_lm_eval(*args, **kwargs):
    from slim.lmeval.run import run_lm_eval as _run
    return _run(*args, **kwargs)


__all__ = ["run_lm_eval"]
