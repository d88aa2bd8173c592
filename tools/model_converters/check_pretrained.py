"""Check that the local weights a config reads fit the config, before a run:

    python tools/model_converters/check_pretrained.py CONFIG [--cfg-options KEY=VALUE ...]

builds the config's model as the Runner would, which loads every ``pretrained=`` diffusers folder
through ``genrep.diffusion.denoisers.load_local_pretrained``. A folder is refused, with the key
named, when its weights do not fill the model its ``config.json`` describes (a missing,
unexpected or mis-shaped key), when a class table (``class_embedding=``) is not
[num_classes or num_classes + 1, cross_attention_dim], or when a converted LDM folder needs
other attention heads than the config gives (``ldm_conversion.json``). Exit status 1 with the
reason on failure.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import genrep  # noqa: F401,E402  (applies genrep.compat first)
from mmengine.config import Config, DictAction  # noqa: E402


def build(cfg: Config):
    from mmengine.registry import init_default_scope

    from genrep.registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    return MODELS.build(cfg.model)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    try:
        model = build(cfg)
    except (FileNotFoundError, KeyError, ValueError) as error:
        print(f'check_pretrained.py: {args.config}: {error}', file=sys.stderr)
        return 1
    count = sum(p.numel() for p in model.parameters())
    print(f'{args.config}: the model builds from its local weights ({count / 1e6:.1f}M '
          'parameters)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
