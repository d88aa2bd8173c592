"""The end of a distributed run: the default process group is destroyed by the tool that made it."""
import torch.distributed as dist


def close_process_group() -> None:
    """Wait for every rank, then destroy the default process group, when one exists.

    PyTorch asks each program to do this before it exits. Left to interpreter shutdown, the
    backend's threads are torn down in no set order, and a gloo rank can abort ("terminate called
    without an active exception", SIGABRT) after a run that succeeded, which fails the whole launch.
    Called by ``tools/train.py`` and ``tools/test.py`` after the run returns; on an exception the
    ranks are not waited for (a rank that raised would leave the others waiting)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
