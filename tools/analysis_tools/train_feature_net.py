"""Train the Fashion-MNIST feature net that FID, IS and CAS read (``FashionMNISTFeatureNet``).

Plain torch, deterministic for a seed and thread count: a few epochs of Adam on the 60,000 training
images (random horizontal flips, as the classification configs), then the accuracy on the 10,000
test images. Cached: when the checkpoint exists, prints its accuracy and exits, unless ``--force``.

    python tools/analysis_tools/train_feature_net.py [--out PATH] [--epochs 2] [--force]
"""
import argparse
import os.path as osp
import sys
import time

# The tools run the genrep of their own checkout, whatever else is installed.
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import genrep  # noqa: F401  (applies genrep.compat before any OpenMMLab import)
import torch
from torch import nn

from genrep.datasets import FashionMNIST
from genrep.evaluation.metrics.feature_net import (DEFAULT_CHECKPOINT, FashionMNISTFeatureNet,
                                                   read_feature_net_checkpoint, save_feature_net,
                                                   to_feature_net_input)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train the Fashion-MNIST feature net of the '
                                     'generation metrics (FID, IS, CAS)')
    parser.add_argument('--out', default=DEFAULT_CHECKPOINT, help='checkpoint to write')
    parser.add_argument('--data-root', default='/usr/share/datasets/fashion-mnist',
                        help='directory of the Fashion-MNIST idx files')
    parser.add_argument('--epochs', type=int, default=2)
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--lr', type=float, default=2e-3, help='peak of the one-cycle schedule')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument('--force', action='store_true', help='retrain even if --out exists')
    return parser.parse_args(argv)


def load_split(data_root: str, split: str):
    """Images uint8 [N, 1, 28, 28] and labels [N] of a Fashion-MNIST split."""
    dataset = FashionMNIST(data_root=data_root, split=split, serialize_data=False)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    imgs = torch.stack([torch.from_numpy(info['img'].copy()) for info in infos])[:, None]
    labels = torch.tensor([info['gt_label'] for info in infos])
    return imgs, labels


@torch.no_grad()
def accuracy(net: nn.Module, imgs: torch.Tensor, labels: torch.Tensor, batch_size=1000) -> float:
    net.eval()
    correct = sum(
        int((net.logits(to_feature_net_input(imgs[i:i + batch_size])).argmax(1)
             == labels[i:i + batch_size]).sum()) for i in range(0, len(imgs), batch_size))
    return correct / len(imgs)


def train(net: nn.Module, imgs: torch.Tensor, labels: torch.Tensor, args) -> None:
    generator = torch.Generator().manual_seed(args.seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, total_steps=args.epochs * -(-len(imgs) // args.batch_size))
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(len(imgs), generator=generator)
        total_loss = 0.0
        for start in range(0, len(imgs), args.batch_size):
            index = order[start:start + args.batch_size]
            x = to_feature_net_input(imgs[index])
            flip = torch.rand(len(index), generator=generator) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            loss = nn.functional.cross_entropy(net.logits(x), labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(index)
        print(f'epoch {epoch + 1}/{args.epochs}: train loss {total_loss / len(imgs):.4f}',
              flush=True)


def main(argv=None):
    args = parse_args(argv)
    if osp.isfile(args.out) and not args.force:
        checkpoint = read_feature_net_checkpoint(args.out)
        print(f'{args.out} exists (sha256 {checkpoint["sha256"][:12]}): test accuracy '
              f'{checkpoint["test_accuracy"]:.4f}; --force retrains')
        return
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    start = time.time()
    train_imgs, train_labels = load_split(args.data_root, 'train')
    test_imgs, test_labels = load_split(args.data_root, 'test')
    net = FashionMNISTFeatureNet()
    train(net, train_imgs, train_labels, args)
    test_accuracy = accuracy(net, test_imgs, test_labels)
    seconds = time.time() - start
    sha256 = save_feature_net(net, args.out, test_accuracy, epochs=args.epochs, seed=args.seed,
                              lr=args.lr, batch_size=args.batch_size, train_seconds=seconds)
    print(f'test accuracy {test_accuracy:.4f} after {seconds:.0f} s; wrote {args.out} '
          f'(sha256 {sha256[:12]})')


if __name__ == '__main__':
    sys.exit(main())
