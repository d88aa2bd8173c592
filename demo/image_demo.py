"""Run a trained model on your own images: the task (classification, segmentation, depth,
detection) comes from the config, the inferencer from its toolkit (genrep.apis.build_inferencer).

    python demo/image_demo.py IMAGE_OR_FOLDER CONFIG CHECKPOINT [--out-dir outputs]
        [--texts "cat, tree"] [--device cpu] [--batch-size 1] [--pred-score-thr 0.3]

Takes images of any size and mode (RGB, RGBA, palette, grayscale): the inferencer brings each to
what the model reads, as the config's data states, and logs how once. Writes the drawn
predictions (the top class on the image, enlarged where it is small; masks overlaid, a coloured
depth map, boxes with their names) under ``<out-dir>/vis`` (named after each file) and prints one line per
image, ``<file name>: <prediction>``, in the order of the file names. ``--texts`` gives an
open-vocabulary model the class names to find.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import genrep  # noqa: F401  (applies genrep.compat before any OpenMMLab import)
import numpy as np

from genrep.apis import build_inferencer, config_task
from genrep.apis.inferencers import image_files


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='A genrep model on your own images')
    parser.add_argument('inputs', help='an image file or a folder of images')
    parser.add_argument('config', help='config file of the model')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out-dir', default='outputs', help='where the drawings go (vis/)')
    parser.add_argument('--texts', help='class names of an open-vocabulary model: "cat, tree"')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--pred-score-thr', type=float, default=0.3,
                        help='detection: boxes drawn and listed from this score up')
    return parser.parse_args(argv)


def summary(task: str, prediction, classes, score_thr: float = 0.3) -> str:
    """One line of a prediction: the top class, the classes in a mask, the depth range, the
    confident boxes."""
    if task == 'classification':
        return f'{prediction["pred_class"]} ({prediction["pred_score"]:.3f})'
    if task == 'detection':
        kept = [(classes[label], score) for label, score in
                zip(prediction['labels'], prediction['scores']) if score >= score_thr]
        return (f'{len(kept)} boxes >= {score_thr:g}: ' +
                ', '.join(f'{n} {s:.2f}' for n, s in kept[:5]))
    values = np.asarray(prediction)
    if task == 'depth':
        return f'depth {values.min():.2f} .. {values.max():.2f}'
    found = [classes[index] for index in np.unique(values) if index < len(classes)]
    return 'classes: ' + ', '.join(found)


def main(argv=None):
    args = parse_args(argv)
    paths = image_files(args.inputs)
    # The lines printed below are the progress; a bar is drawn only on a terminal (elsewhere it
    # ends without a line end and the first printed line would run on from it).
    inferencer = build_inferencer(args.config, args.checkpoint, args.device, texts=args.texts,
                                  show_progress=sys.stdout.isatty())
    task = config_task(inferencer.cfg if hasattr(inferencer, 'cfg') else inferencer.config)
    extra = dict(pred_score_thr=args.pred_score_thr) if task == 'detection' else {}
    result = inferencer(paths, out_dir=args.out_dir, batch_size=args.batch_size, **extra)
    predictions = result['predictions'] if isinstance(result, dict) else result
    if not isinstance(predictions, list):
        predictions = [predictions]
    classes = inferencer.model.dataset_meta['classes']
    for path, prediction in zip(paths, predictions):
        print(f'{osp.basename(path)}: {summary(task, prediction, classes, args.pred_score_thr)}')
    print(f'{task}: {len(predictions)} images -> {osp.join(args.out_dir, "vis")}')


if __name__ == '__main__':
    main()
