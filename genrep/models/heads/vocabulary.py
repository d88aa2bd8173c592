"""The training vocabulary of an open-vocabulary head: class names from a config."""
from typing import List, Sequence, Union

from genrep.registry import DATASETS


def dataset_class_names(class_names: Union[str, dict, Sequence[str]]) -> List[str]:
    """The class names a config gives: a list of names as given; the ``METAINFO['classes']`` of
    the dataset class registered under the name ``class_names`` (in mmengine's DATASETS tree,
    scope prefix allowed); or the ``metainfo['classes']`` of the dataset a config dict builds
    (built with ``lazy_init``: no file listing), for datasets whose classes come from their files,
    such as ``genrep.ScenesSegDataset``."""
    if isinstance(class_names, dict):
        dataset_cfg = dict(class_names, lazy_init=True, pipeline=[])
        classes = DATASETS.build(dataset_cfg).metainfo.get('classes')
        if not classes:
            raise ValueError(f'class_names: the dataset {class_names.get("type")!r} built from '
                             "the config has no metainfo['classes']")
        return list(classes)
    if not isinstance(class_names, str):
        return list(class_names)
    dataset = DATASETS.get(class_names)
    classes = getattr(dataset, 'METAINFO', {}).get('classes') if dataset is not None else None
    if not classes:
        raise ValueError(f'class_names={class_names!r}: no registered dataset class with '
                         "METAINFO['classes'] of that name")
    return list(classes)


def training_vocabulary(owner: str, class_names: Union[str, dict, Sequence[str]],
                        head_kwargs: dict) -> List[str]:
    """``dataset_class_names(class_names)``, with the head's ``num_classes`` taken out of
    ``head_kwargs``: a config inheriting a closed-set head may carry None or the same count;
    another count is refused in one line naming ``owner``."""
    names = dataset_class_names(class_names)
    if head_kwargs.pop('num_classes', None) not in (None, len(names)):
        raise ValueError(f'{owner}: num_classes follows from class_names ({len(names)} names); '
                         'set it to None or remove it')
    return names
