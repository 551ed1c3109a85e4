"""Golden keys: an accidental change to key composition must fail here."""
from slim.cache.keys import canonical_json, diff_material, hash_material, step_key


def test_canonical_json_is_stable():
    assert canonical_json({"b": 1.0, "a": [1, 2.5, None], "c": {"z": True, "y": "é"}}) == \
        '{"a":[1,2.5,null],"b":1,"c":{"y":"\\u00e9","z":true}}'


def test_golden_step_key():
    key, material = step_key("quantize_gguf", 1, {"type": "Q4_K_M", "imatrix": True},
                             {"f16": "step:0123456789abcdef0123456789abcdef"},
                             {"llama-cpp-python": "0.3.36", "gguf": "0.19.0"})
    assert material == {
        "key_schema": 1, "step": "quantize_gguf", "version": 1,
        "params": {"type": "Q4_K_M", "imatrix": True},
        "inputs": {"f16": "step:0123456789abcdef0123456789abcdef"},
        "libs": {"llama-cpp-python": "0.3.36", "gguf": "0.19.0"}}
    assert key == "50aaf54b7bde463264c1ba3a19b6cb22"
    assert len(key) == 32


def test_key_changes_with_every_component():
    base = ("imatrix", 1, {"batch_size": 4}, {"model": "step:aa"}, {"torch": "2.13.0"})
    k0 = step_key(*base)[0]
    variants = [("imatrix2",) + base[1:], (base[0], 2) + base[2:],
                base[:2] + ({"batch_size": 8},) + base[3:],
                base[:3] + ({"model": "step:ab"},) + base[4:],
                base[:4] + ({"torch": "2.14.0"},)]
    keys = {step_key(*v)[0] for v in variants}
    assert k0 not in keys and len(keys) == len(variants)


def test_float_and_int_hash_alike():
    assert hash_material({"x": 1.0}) == hash_material({"x": 1})


def test_diff_material_names_the_change():
    a = {"params": {"type": "Q4_K_M"}, "inputs": {"calibration": "step:1"}}
    b = {"params": {"type": "Q5_K_M"}, "inputs": {"calibration": "step:2"}}
    why = diff_material(a, b)
    assert "params.type changed: Q4_K_M -> Q5_K_M" in why
    assert any(w.startswith("inputs.calibration changed") for w in why)
    assert diff_material(a, a) == []
