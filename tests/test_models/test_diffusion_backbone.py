import pytest
import torch
from tiny_models import dit_cfg, unet2d_cfg, unet2d_condition_cfg, vae_cfg

from genrep.models.backbones import DiffusionBackbone


def build(denoiser, **kwargs):
    torch.manual_seed(0)
    return DiffusionBackbone(denoiser=denoiser, **kwargs).eval()


@pytest.mark.parametrize('kind, denoiser, vae, in_channels, size, strides, channels', [
    ('pixel UNet2DModel', unet2d_cfg(in_channels=1), None, 1, 32, (1, 2, 4, 8), (8, 16, 16, 32)),
    ('latent UNet2DConditionModel + VAE', unet2d_condition_cfg(), vae_cfg(), 3, 32,
     (2, 4, 8, 16), (8, 16, 16, 32)),
    ('DiT on latents', dit_cfg(), None, 4, 16, (1, 2, 4, 8), (16, 16, 16, 16)),
])
def test_feature_shapes_and_strides(kind, denoiser, vae, in_channels, size, strides, channels):
    backbone = build(denoiser, vae=vae)
    assert backbone.out_strides == strides, kind
    assert backbone.out_channels == channels, kind
    images = torch.randn(2, in_channels, size, size)
    feats = backbone(images)
    assert len(feats) == 4
    for feat, stride, ch in zip(feats, strides, channels):
        assert feat.shape == (2, ch, size // stride, size // stride), kind


def test_out_indices_select_features():
    backbone = build(unet2d_cfg(), out_indices=(1, 3))
    feats = backbone(torch.randn(1, 1, 16, 16))
    assert [f.shape[-1] for f in feats] == [8, 2]
    assert backbone.out_channels == (16, 32)
    with pytest.raises(ValueError, match='out_indices'):
        build(unet2d_cfg(), out_indices=(4, ))


def test_features_are_the_unet_decoder_activations():
    """The hooked features are the inputs of the up blocks' upsamplers (and the last block's
    output), computed here independently by running the diffusers UNet with our own hooks."""
    backbone = build(unet2d_cfg())
    unet = backbone.denoiser.model
    images = torch.randn(2, 1, 16, 16)
    seen = {}
    handles = [
        block.upsamplers[0].register_forward_pre_hook(
            lambda m, a, i=i: seen.__setitem__(i, a[0].clone()))
        for i, block in enumerate(unet.up_blocks) if block.upsamplers is not None
    ]
    handles.append(unet.up_blocks[-1].register_forward_hook(
        lambda m, a, o: seen.__setitem__(len(unet.up_blocks) - 1, o.clone())))
    null = torch.full((2, ), 10)
    with torch.no_grad():
        expected_eps = unet(images, torch.zeros(2, dtype=torch.long), class_labels=null).sample
        out = backbone.denoiser.forward_features(images, 0)
    for h in handles:
        h.remove()
    n = len(unet.up_blocks)
    for j, feat in enumerate(out.features):
        torch.testing.assert_close(feat, seen[n - 1 - j])
    torch.testing.assert_close(out.eps, expected_eps)
    assert out.var_values is None
    assert backbone.denoiser._captured == {}


def test_null_class_and_timestep():
    backbone = build(unet2d_cfg())
    den = backbone.denoiser
    x = torch.randn(3, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(den(x, 0), den(x, 0, torch.full((3, ), den.null_class_id)))
        assert not torch.allclose(den(x, 0, torch.tensor([0, 1, 2])), den(x, 0))
        assert not torch.allclose(den(x, 500), den(x, 0))
    assert den.num_classes == 10 and den.null_class_id == 10


def test_dit_learned_variance_split():
    den = build(dit_cfg(learn_sigma=True)).denoiser
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        raw = den(x, 10, torch.tensor([1, 2]))
        out = den.forward_features(x, 10, torch.tensor([1, 2]))
    assert raw.shape == (2, 8, 8, 8)
    torch.testing.assert_close(out.eps, raw[:, :4])
    torch.testing.assert_close(out.var_values, raw[:, 4:])
    with pytest.raises(ValueError, match='learn_sigma'):
        build(dit_cfg(learn_sigma=False) | dict(learn_sigma=True))


def test_gradients_reach_the_denoiser():
    backbone = build(unet2d_cfg()).train()
    feats = backbone(torch.randn(2, 1, 16, 16))
    sum(f.mean() for f in feats).backward()
    grads = [p.grad for p in backbone.denoiser.model.down_blocks.parameters()]
    assert all(g is not None for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_frozen_vae_gets_no_gradient_and_stays_in_eval():
    backbone = build(unet2d_condition_cfg(), vae=vae_cfg()).train()
    assert not backbone.vae.training
    feats = backbone(torch.randn(1, 3, 32, 32))
    feats[-1].mean().backward()
    assert all(p.grad is None for p in backbone.vae.parameters())
    assert backbone.denoiser.class_context.weight.grad is not None


def test_input_size_must_be_divisible():
    backbone = build(unet2d_cfg())
    with pytest.raises(ValueError, match='not a multiple of 8'):
        backbone(torch.randn(1, 1, 28, 28))


@pytest.mark.parametrize('cfg_fn', [unet2d_cfg, dit_cfg])
def test_from_pretrained_local_directory(tmp_path, cfg_fn):
    source = build(cfg_fn()).denoiser
    source.model.save_pretrained(tmp_path / 'denoiser')
    cfg = cfg_fn()
    cfg.pop('config')
    loaded = build(dict(cfg, pretrained=str(tmp_path / 'denoiser'))).denoiser
    x = torch.randn(2, source.in_channels, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, 3, torch.tensor([1, 2])),
                                   source(x, 3, torch.tensor([1, 2])))


def test_pretrained_must_be_a_local_directory():
    cfg = unet2d_cfg()
    cfg.pop('config')
    with pytest.raises(FileNotFoundError) as err:
        build(dict(cfg, pretrained='CompVis/ldm-celebahq-256'))
    message = str(err.value)
    assert 'CompVis/ldm-celebahq-256' in message and 'never from a hub' in message
    assert '\n' not in message


def test_config_and_pretrained_are_exclusive():
    with pytest.raises(ValueError, match='exactly one of'):
        build(dict(unet2d_cfg(), pretrained='/tmp'))


def test_unknown_diffusers_config_keys_are_refused_at_build():
    """diffusers' from_config drops unknown keys with a warning; a typo must stop the build with
    the key named."""
    from genrep.registry import MODELS
    cfg = unet2d_cfg()
    cfg['config']['block_out_channel'] = (8, 16, 16, 32)
    with pytest.raises(ValueError,
                       match=r"UNet2DModel config: unknown keys \['block_out_channel'\]"):
        MODELS.build(cfg)


def test_class_prompts_start_the_class_table_from_the_checkpoints_text_context(tmp_path):
    """Each class's cross-attention context is the CLIP text encoder's last hidden states of its
    prompt, padded to the tokenizer's length (computed here with transformers directly), the null
    class's that of the empty prompt; the denoiser then conditions on them."""
    from transformers import CLIPTextModel, CLIPTokenizer

    from tiny_models import write_tiny_clip
    write_tiny_clip(str(tmp_path / 'text_encoder'), hidden_size=16)
    write_tiny_clip(str(tmp_path / 'tokenizer'), with_model=False)
    names = ['dog', 'cat', 'tree']
    denoiser = unet2d_condition_cfg(num_classes=3)
    backbone = build(denoiser, class_prompts=dict(pretrained=str(tmp_path), class_names=names,
                                                  template='a {} here'))
    tokenizer = CLIPTokenizer.from_pretrained(str(tmp_path / 'tokenizer'))
    text = CLIPTextModel.from_pretrained(str(tmp_path / 'text_encoder')).eval()
    ids = tokenizer(['a dog here', 'a cat here', 'a tree here', ''], padding='max_length',
                    max_length=16, return_tensors='pt').input_ids
    with torch.no_grad():
        expected = text(ids).last_hidden_state
    unet = backbone.denoiser
    assert unet.num_tokens == 16
    for label in range(4):
        got = unet.class_embeddings(torch.tensor([label]))[0]
        torch.testing.assert_close(got, expected[label])
    # The table stays trainable (it is where the teacher's classes live).
    assert unet.class_context.weight.requires_grad

    with pytest.raises(ValueError, match="num_classes is 3"):
        build(denoiser, class_prompts=dict(pretrained=str(tmp_path), class_names=names[:2]))
    with pytest.raises(FileNotFoundError, match='text_encoder'):
        build(denoiser, class_prompts=dict(pretrained=str(tmp_path / 'missing'),
                                           class_names=names))
    with pytest.raises(KeyError, match='class_prompts'):
        build(denoiser, class_prompts=dict(pretrained=str(tmp_path), names=names))
