"""Default build names: a different probe suite or calibration set is a different build."""
from tests.conftest import compose

from slim.build import build_name


def test_default_name_is_model_method_hardware():
    assert build_name(compose(["method=q4_k_m", "hardware=apple8gb"])) == "smollm2_135m-q4_k_m-apple8gb"


def test_non_default_suite_and_calibration_are_in_the_name():
    # probes=full used to overwrite the default-suite build of the same target
    assert build_name(compose(["probes=full"])) == "smollm2_135m-q4_k_m-apple8gb-probes_full"
    assert build_name(compose(["model=tiny_llama", "probes=quick", "calibration=small"])) == \
        "tiny_llama-q4_k_m-apple8gb-probes_quick-calib_small"


def test_explicit_build_name_wins():
    assert build_name(compose(["probes=full", "build_name=mine"])) == "mine"
