# GenRep stage 1 on Fashion-MNIST with the example plugin's per-location head: the stock
# ImageClassifier keeps genrep's DiffusionBackbone, its head becomes PatchClsHead (registered in
# mmpretrain by this project) and GenRep reads it through PatchClassificationAdapter (registered in
# genrep's TASK_ADAPTERS by this project), so the distillation is dense (Eq. 4 at each location).
_base_ = ['../../../configs/genrep/fmnist_genrep_stage1.py']
custom_imports = dict(
    imports=['genrep', 'projects.example_head.example_head'], allow_failed_imports=False)

model = dict(
    perception=dict(
        neck=None,
        head=dict(
            _delete_=True,
            type='PatchClsHead',
            num_classes=10,
            in_channels=128,
            loss=dict(type='CrossEntropyLoss'),
            topk=(1, ))),
    task=dict(_delete_=True, type='PatchClassificationAdapter'),
    # dense candidates: the image's class first, then the head's top scores, 3 in all
    num_candidates=3,
)
