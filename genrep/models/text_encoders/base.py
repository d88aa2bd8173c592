"""Class-name text embeddings for open-vocabulary heads (appendix A.4): the shared encoder logic.

A text encoder turns class names into one L2-normalised vector each, ``encode(names) -> [N, D]``:

1. every name is put into every prompt template ('a photo of a {}.' -> 'a photo of a dog.');
2. the subclass embeds the prompts with its language model (``_embed_prompts``);
3. as in CLIP's zero-shot classifier, each prompt embedding is L2-normalised, the T embeddings of a
   name are averaged and the mean is L2-normalised again.

Embeddings are cached on disk, one file per (encoder identity, names, templates): the identity is a
content hash of the model folder's files plus the encoder's settings, so a training run (and every
rank of it) computes them once, and a changed weights file never reads a stale cache. The language
model is loaded only on a cache miss.

Text encoders are plain objects, not ``nn.Module``s: a head that keeps one (to swap class names at
test time) does not put the language model in its state dict, its optimizer or its ``.to()``.
"""
import hashlib
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from genrep.utils.files import file_sha256

DEFAULT_TEMPLATES = ('a photo of a {}.', )
# CLIP's seven ImageNet templates chosen by its authors for prompt ensembling (CLIP repository,
# notebooks/Prompt_Engineering_for_ImageNet.ipynb).
CLIP_ENSEMBLE_TEMPLATES = (
    'itap of a {}.',
    'a bad photo of the {}.',
    'a origami {}.',
    'a photo of the large {}.',
    'a {} in a video game.',
    'art of the {}.',
    'a photo of the small {}.',
)
TEMPLATE_PRESETS = {'default': DEFAULT_TEMPLATES, 'clip_ensemble': CLIP_ENSEMBLE_TEMPLATES}
DEFAULT_CACHE_DIR = '~/.cache/genrep/text_embeddings'


def resolve_templates(templates: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    """Prompt templates as a tuple, each holding '{}' once; a string names a preset of
    ``TEMPLATE_PRESETS``."""
    if isinstance(templates, str):
        if templates not in TEMPLATE_PRESETS:
            raise ValueError(f'templates={templates!r}: expected a sequence of templates or one of '
                             f'{sorted(TEMPLATE_PRESETS)}')
        return TEMPLATE_PRESETS[templates]
    templates = tuple(templates)
    if not templates:
        raise ValueError('templates: expected at least one prompt template')
    for template in templates:
        if not isinstance(template, str) or template.count('{}') != 1:
            raise ValueError(
                f'templates: {template!r} must be a string holding "{{}}" exactly once')
    return templates


# Content hashes of model folders, keyed by (path, size, mtime) of each file: each process hashes a
# folder once, however many encoders (heads, ranks' rebuilds) read it.
_FILE_HASHES: Dict[Tuple[str, int, int], str] = {}


def _cached_file_sha256(path: str) -> str:
    stat = os.stat(path)
    memo_key = (osp.realpath(path), stat.st_size, stat.st_mtime_ns)
    if memo_key not in _FILE_HASHES:
        _FILE_HASHES[memo_key] = file_sha256(path)
    return _FILE_HASHES[memo_key]


def folder_fingerprint(folder: str) -> Dict[str, str]:
    """{file name: sha256 of its content} of the regular files directly in ``folder`` (about 1 s a
    GB the first time in a process). Names, not paths, so a copied folder keeps its cache."""
    return {
        name: _cached_file_sha256(osp.join(folder, name))
        for name in sorted(os.listdir(folder)) if osp.isfile(osp.join(folder, name))
    }


def check_model_dir(owner: str, key: str, folder: Optional[str],
                    required: Sequence[Sequence[str]]) -> str:
    """The absolute path of ``folder``, or a one-line FileNotFoundError naming ``owner``'s config
    ``key`` and the path. ``required`` lists groups of file names; each group needs one of its
    files in the folder (e.g. ``('model.safetensors', 'pytorch_model.bin')``)."""
    if folder is None or not osp.isdir(osp.expanduser(str(folder))):
        raise FileNotFoundError(f'{owner}: {key}={folder!r} is not a directory')
    folder = osp.abspath(osp.expanduser(str(folder)))
    for group in required:
        if not any(osp.isfile(osp.join(folder, name)) for name in group):
            raise FileNotFoundError(f'{owner}: {key}={folder!r} has none of {list(group)}')
    return folder


class BaseTextEncoder:
    """Encodes class names to L2-normalised embeddings ``[N, D]``, cached on disk (see the module
    docstring).

    Subclasses set ``model_dir`` in ``__init__`` and implement ``_load`` (load the language model
    from local files) and ``_embed_prompts`` (prompts -> [P, D], any norm); ``identity`` lists what
    besides the model files decides the embeddings.

    Args:
        templates: prompt templates, each with one '{}' for the class name, or the name of a preset
            ('default': 'a photo of a {}.'; 'clip_ensemble': CLIP's seven ImageNet templates).
        cache_dir: folder of the embedding cache; None disables the cache.
        batch_size: prompts per forward pass of the language model.
        device: where the language model runs; ``encode`` always returns a float32 CPU tensor.
    """
    model_dir: str

    def __init__(self,
                 templates: Union[str, Sequence[str]] = DEFAULT_TEMPLATES,
                 cache_dir: Optional[str] = DEFAULT_CACHE_DIR,
                 batch_size: int = 256,
                 device: Union[str, torch.device] = 'cpu'):
        self.templates = resolve_templates(templates)
        self.cache_dir = None if cache_dir is None else osp.expanduser(cache_dir)
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.is_loaded = False

    # -- what subclasses provide ------------------------------------------------------------------
    def _load(self) -> None:
        raise NotImplementedError

    def _embed_prompts(self, prompts: List[str]) -> Tensor:
        raise NotImplementedError

    def identity(self) -> dict:
        """What decides the embeddings apart from names and templates: the class, the content
        hash of the model folder; subclasses add their settings (maximum length...)."""
        return {'encoder': type(self).__name__, 'files': folder_fingerprint(self.model_dir)}

    # -- encoding ---------------------------------------------------------------------------------
    def prompts(self, names: Sequence[str]) -> List[str]:
        """Every template filled with every name, name-major: [N * T]."""
        return [template.format(name) for name in names for template in self.templates]

    def cache_key(self, names: Sequence[str]) -> str:
        record = {'identity': self.identity(), 'names': list(names),
                  'templates': list(self.templates)}
        return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()

    def cache_path(self, names: Sequence[str]) -> Optional[str]:
        if self.cache_dir is None:
            return None
        return osp.join(self.cache_dir, f'{type(self).__name__}-{self.cache_key(names)[:32]}.pt')

    def encode(self, names: Sequence[str]) -> Tensor:
        """Embeddings of class names, [N, D] float32 on the CPU, each row of unit norm: the
        normalised mean over templates of the normalised prompt embeddings (CLIP's ensembling)."""
        names = list(names)
        if not names or not all(isinstance(name, str) and name for name in names):
            raise ValueError(f'{type(self).__name__}.encode: expected a non-empty sequence of '
                             f'non-empty strings, got {names!r}')
        path = self.cache_path(names)
        if path is not None and osp.isfile(path):
            return self._read_cache(path, names)
        embeddings = self._encode_uncached(names)
        if path is not None:
            self._write_cache(path, names, embeddings)
        return embeddings

    @torch.no_grad()
    def _encode_uncached(self, names: List[str]) -> Tensor:
        if not self.is_loaded:
            self._load()
            self.is_loaded = True
        prompts = self.prompts(names)
        prompt_embeddings = torch.cat([
            self._embed_prompts(prompts[i:i + self.batch_size]).float().cpu()
            for i in range(0, len(prompts), self.batch_size)
        ])
        per_name = F.normalize(prompt_embeddings, dim=-1).view(len(names), len(self.templates), -1)
        return F.normalize(per_name.mean(dim=1), dim=-1)

    def _read_cache(self, path: str, names: List[str]) -> Tensor:
        record = torch.load(path, map_location='cpu', weights_only=True)
        if record.get('names') != names or record.get('templates') != list(self.templates):
            raise ValueError(f'{type(self).__name__}: the cache file {path} holds other names or '
                             f'templates than its key says; delete it')
        return record['embeddings']

    def _write_cache(self, path: str, names: List[str], embeddings: Tensor) -> None:
        os.makedirs(self.cache_dir, exist_ok=True)
        # Written aside then renamed: ranks encoding the same names at once never read half a file.
        tmp_path = f'{path}.{os.getpid()}.tmp'
        torch.save({'embeddings': embeddings, 'names': names, 'templates': list(self.templates),
                    'encoder': type(self).__name__, 'model_dir': self.model_dir}, tmp_path)
        os.replace(tmp_path, path)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(model_dir={self.model_dir!r}, '
                f'templates={self.templates!r}, cache_dir={self.cache_dir!r})')
