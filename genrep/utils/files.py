"""Files as the tools and the model loaders read them: a file's content hash, a script imported as
a module."""
import hashlib
import importlib.util
import os.path as osp
from types import ModuleType


def file_sha256(path: str) -> str:
    """The hex sha256 of the content of the file at ``path`` (what ``sha256sum`` prints), read in
    4 MiB blocks so a multi-GB weights file is never held in memory whole."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 22), b''):
            digest.update(block)
    return digest.hexdigest()


def load_script(path: str) -> ModuleType:
    """The Python file at ``path`` imported as a module named after the file, without putting its
    folder on ``sys.path`` (tools/ and benchmarks/ hold scripts, not packages)."""
    name = osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
