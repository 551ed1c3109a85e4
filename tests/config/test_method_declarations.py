"""What a method YAML declares about itself is checked before work."""
from __future__ import annotations

import pytest

from slim.config.validate import validate
from slim.errors import ConfigErrors
from tests.conftest import compose


def test_base_model_relation_is_one_of_hugging_faces():
    with pytest.raises(ConfigErrors, match="method.base_model_relation"):
        validate(compose(["model=llama3_8b", "plan=true", "method.base_model_relation=bogus"]))
    assert compose(["method=distill_half"]).method.base_model_relation == "finetune"
    assert compose(["method=q4_k_m"]).method.base_model_relation == "quantized"
