"""LVIS v1 with a training vocabulary: the categories of chosen frequencies only.

The open-vocabulary LVIS protocol (ViLD; BARON; the paper's A.3) trains on the 866 common and
frequent classes: the 337 rare names are not in the training vocabulary at all (no column of the
classifier in training), and come back, with every other name, at test. mmdet's
``LVISV1Dataset`` always labels the 1203 categories of the file, so a rare class would be a
background-only column in training. :class:`LVISV1VocabularyDataset` keeps the categories whose
``frequency`` (a field of every LVIS v1 category) is in ``frequencies``: labels 0..K-1 in category
id order, ``metainfo['classes']`` their names (what ``genrep.OpenVocabularyHook`` hands the head),
and annotations of the other categories dropped.
"""
import json
import os.path as osp
from typing import Dict, Optional, Sequence

from mmdet.datasets import LVISV1Dataset

from genrep.registry import DATASETS

FREQUENCIES = ('r', 'c', 'f')


@DATASETS.register_module()
class LVISV1VocabularyDataset(LVISV1Dataset):
    """``LVISV1Dataset`` restricted to the categories of ``frequencies``.

    Args:
        frequencies: LVIS frequency groups kept: 'r' (rare, 1-10 training images), 'c' (common),
            'f' (frequent). Default: ('c', 'f'), the OV-LVIS training vocabulary.
        categories_file: a json list of the file's categories (``id``, ``name``, ``frequency``;
            tools/dataset_converters/lvis_remove_rare.py writes ``lvis_v1_categories.json``),
            relative to ``data_root``. It gives the vocabulary without reading the (1 GB)
            annotation file: with ``lazy_init`` (a config's ``class_names=dict(type=...)``), and
            as a check of the annotation file's categories otherwise.
        **kwargs: those of ``LVISV1Dataset``.
    """

    def __init__(self, frequencies: Sequence[str] = ('c', 'f'),
                 categories_file: Optional[str] = None, **kwargs):
        unknown = sorted(set(frequencies) - set(FREQUENCIES))
        if unknown or not frequencies:
            raise ValueError(f'LVISV1VocabularyDataset: frequencies must be a non-empty subset of '
                             f"{FREQUENCIES}, got {tuple(frequencies)}")
        self.frequencies = tuple(frequencies)
        self._vocabulary_set = False
        self._listed = None
        if categories_file is not None:
            root = kwargs.get('data_root') or ''
            path = categories_file if osp.isabs(categories_file) else osp.join(root,
                                                                                categories_file)
            if not osp.isfile(path):
                raise FileNotFoundError(f'LVISV1VocabularyDataset: categories_file {path} not '
                                        'found (lvis_remove_rare.py writes it)')
            with open(path) as f:
                self._listed = {c['id']: c for c in json.load(f)}
        super().__init__(**kwargs)
        if not self._vocabulary_set and self._listed is not None:
            self.cat_ids = sorted(self._listed)
            self._set_vocabulary(self._listed, path)

    def load_data_list(self):
        self._vocabulary_set = False
        return super().load_data_list()

    def _set_vocabulary(self, categories: Dict[int, dict], source: str) -> None:
        """Restrict ``cat_ids``, ``cat2label``, the class names and the palette to the kept
        frequencies."""
        missing = [c for c in self.cat_ids if 'frequency' not in categories[c]]
        if missing:
            raise KeyError(f'LVISV1VocabularyDataset: {source}: categories {missing[:5]} have no '
                           'frequency field (an LVIS v1 annotation file has one)')
        all_ids = list(self.cat_ids)
        self.cat_ids = [c for c in all_ids if categories[c]['frequency'] in self.frequencies]
        self.cat2label = {c: i for i, c in enumerate(self.cat_ids)}
        self._metainfo['classes'] = tuple(categories[c]['name'] for c in self.cat_ids)
        palette = self._metainfo.get('palette')
        if palette is not None and len(palette) == len(all_ids):
            index = {c: i for i, c in enumerate(all_ids)}
            self._metainfo['palette'] = [palette[index[c]] for c in self.cat_ids]
        self._vocabulary_set = True

    def parse_data_info(self, raw_data_info: dict):
        if not self._vocabulary_set:
            # LVISV1Dataset.load_data_list deletes its LVIS api when done: set the vocabulary
            # from it at the first image.
            if self._listed is not None:
                file_names = {c: self.lvis.cats[c]['name'] for c in self.cat_ids}
                listed = {c: self._listed[c]['name'] for c in self._listed}
                if file_names != listed:
                    raise ValueError(f'LVISV1VocabularyDataset: {self.ann_file}: its categories '
                                     'differ from categories_file')
            self._set_vocabulary(self.lvis.cats, self.ann_file)
        raw_data_info = dict(raw_data_info, raw_ann_info=[
            a for a in raw_data_info['raw_ann_info'] if a['category_id'] in self.cat2label])
        return super().parse_data_info(raw_data_info)
