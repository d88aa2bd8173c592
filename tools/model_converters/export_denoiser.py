"""Export the denoiser of a GenRep checkpoint as a diffusers folder (``save_pretrained``).

This is the form in which the paper's starting points ship (Stable Diffusion, DiT, LDM) and which a
config reads with ``denoiser=dict(type='UNet2DDenoiser', pretrained=FOLDER)``. What is exported is
the checkpoint's ``state_dict``: in a run with mmengine's ``EMAHook`` (``make pretrain``), the EMA
weights. Non-finite weights are refused.

    python tools/model_converters/export_denoiser.py CONFIG CHECKPOINT OUT_DIR

Writes OUT_DIR/config.json and OUT_DIR/diffusion_pytorch_model.safetensors, and prints the
weights file's sha256 (the model zoo records it).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import genrep  # noqa: F401,E402  (applies genrep.compat before any OpenMMLab import)
from genrep.apis import init_model  # noqa: E402
from genrep.utils.files import file_sha256  # noqa: E402

WEIGHTS_FILE = 'diffusion_pytorch_model.safetensors'


def export_denoiser(config: str, checkpoint: str, out_dir: str) -> str:
    """Write the denoiser of ``config``'s model with ``checkpoint``'s weights to ``out_dir`` as a
    diffusers folder; returns the weights file's path."""
    model = init_model(config, checkpoint)
    denoiser = model.perception.backbone.denoiser.model
    for name, value in denoiser.state_dict().items():
        if value.is_floating_point() and not bool(value.isfinite().all()):
            raise ValueError(f'{checkpoint}: denoiser weight {name} holds NaN or infinite values; '
                             'not exported')
    denoiser.save_pretrained(out_dir, safe_serialization=True)
    return osp.join(out_dir, WEIGHTS_FILE)


def main():
    parser = argparse.ArgumentParser(description='Export a GenRep denoiser as a diffusers folder')
    parser.add_argument('config', help='the config the checkpoint was trained with')
    parser.add_argument('checkpoint', help='mmengine checkpoint (.pth)')
    parser.add_argument('out_dir', help='output folder (config.json + safetensors)')
    args = parser.parse_args()
    weights = export_denoiser(args.config, args.checkpoint, args.out_dir)
    print(f'{weights}: sha256 {file_sha256(weights)}')


if __name__ == '__main__':
    main()
