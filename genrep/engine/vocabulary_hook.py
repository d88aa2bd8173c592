"""OpenVocabularyHook: an open-vocabulary model uses each phase's dataset's class names."""
from typing import List, Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from genrep.registry import HOOKS


def vocabulary_modules(model) -> List:
    """The outermost modules of ``model`` that take a vocabulary (``set_class_names``): a head that
    owns a text classifier is called, not also its classifier."""
    found, prefixes = [], []
    for name, module in model.named_modules():
        if any(name.startswith(prefix) for prefix in prefixes):
            continue
        if callable(getattr(module, 'set_class_names', None)):
            found.append(module)
            prefixes.append(name + '.' if name else '')
    return found


@HOOKS.register_module()
class OpenVocabularyHook(Hook):
    """Sets the class names of the model's text classifiers to those of the dataset of the phase
    that starts (``metainfo['classes']``): the training vocabulary before the first training
    iteration and the first after each validation, the validation / test vocabulary before those. So a model trained on COCO-Stuff's
    names is evaluated on ADE20K's, and the metric's classes and the head's columns agree.

    Args:
        test_classes: names to test with instead of the test dataset's (e.g. a user's own).
    """
    priority = 'NORMAL'

    def __init__(self, test_classes: Optional[List[str]] = None):
        self.test_classes = None if test_classes is None else list(test_classes)
        self.phase = None

    def _set(self, runner, classes, phase: str) -> None:
        if classes is None:
            raise ValueError(f'OpenVocabularyHook: the {phase} dataset has no '
                             "metainfo['classes'] to name the open-vocabulary classes")
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        modules = vocabulary_modules(model)
        if not modules:
            raise ValueError('OpenVocabularyHook: the model has no module with set_class_names '
                             '(an open-vocabulary head)')
        for module in modules:
            module.set_class_names(list(classes))
        self.phase = phase
        runner.logger.info(f'open vocabulary: {len(classes)} {phase} classes')

    @staticmethod
    def _classes(dataloader):
        return dataloader.dataset.metainfo.get('classes')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self.phase != 'train':  # the first iteration, or the first after a validation
            self._set(runner, self._classes(runner.train_dataloader), 'train')

    def before_val(self, runner) -> None:
        self._set(runner, self._classes(runner.val_dataloader), 'val')

    def before_test(self, runner) -> None:
        self._set(runner, self.test_classes or self._classes(runner.test_dataloader), 'test')
