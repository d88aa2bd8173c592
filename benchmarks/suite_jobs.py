# The embedded jobs of the benchmark suite (tools/benchmark_suite.py), one entry each: a new job
# (or task) is one more entry. Keys of an entry:
#   family    the config family: one configs/genrep/metafiles/<family>.yaml per family
#   task, dataset    as the model zoo names them (OpenMMLab metafile 'Task' / 'Dataset')
#   config    the config whose figures these are (its file and _base_ files, with the code and
#             the installed versions, decide whether the stored result is current)
#   make      the make target that trains and tests it; or `commands`, a list of shell commands
#   results   glob of the test result JSON (tools/test.py writes <work-dir>/<time>/<time>.json);
#             the newest match is read
#   metrics   {key in the result JSON: name in the table and the metafile}
#   lower_is_better    metric keys where smaller is better (ECE, FID, depth errors)
#   log, weights       globs of the training log and the checkpoint the metafile points to
#   pictures  {name: glob} of the job's drawn results, written to docs/_static/results/<name>.png
#             (the newest run's first match, under 200 kB), the pictures the README and docs show
SEG = dict(family='scenes_seg', task='Semantic Segmentation', dataset='Scenes-ADE',
           metrics={'mIoU': 'mIoU', 'aAcc': 'aAcc'})
OVSEG = dict(family='scenes_ov_seg', task='Open Vocabulary Semantic Segmentation',
             dataset='Scenes-COCO-Stuff',
             metrics={'mIoU': 'mIoU', 'mIoU_seen': 'mIoU (seen)', 'mIoU_unseen': 'mIoU (unseen)'})
OVDET = dict(family='scenes_ovdet', task='Open Vocabulary Object Detection', dataset='Scenes-COCO',
             metrics={'coco/bbox_mAP_50': 'AP50', 'coco/base_ap50': 'AP50 (base)',
                      'coco/novel_ap50': 'AP50 (novel)'})
DEPTH = dict(family='scenes_depth', task='Depth Estimation', dataset='Scenes-NYU',
             metrics={'rmse': 'RMSE', 'abs_rel': 'AbsRel', 'd1': 'delta1'},
             lower_is_better=['rmse', 'abs_rel'])


def scenes_job(kind: dict, name: str, make: str, picture: str = None) -> dict:
    """A scenes job whose config is configs/genrep/<name>.py, trained in work_dirs/<name> (by
    iterations) and tested in work_dirs/<name>/test, the layout of the Makefile's scenes targets;
    ``picture``: the name under which its test's first drawn result is shown."""
    job = dict(kind,
               config=f'configs/genrep/{name}.py',
               make=make,
               results=f'work_dirs/{name}/test/*/*.json',
               log=f'work_dirs/{name}/*/*.log',
               weights=f'work_dirs/{name}/iter_*.pth')
    if picture:
        job['pictures'] = {picture: f'work_dirs/{name}/test/*/vis_data/vis_image/*.png'}
    return job


jobs = dict(
    main=dict(
        family='fmnist_genrep',
        task='Image Classification',
        dataset='Fashion-MNIST',
        config='configs/genrep/fmnist_genrep_stage2.py',
        make='main',
        results='work_dirs/fmnist_genrep_stage2/test/*/*.json',
        metrics={'accuracy/top1': 'Top 1 Accuracy', 'calibration/ece': 'ECE',
                 'generation/fid': 'FID', 'generation/is': 'IS', 'generation/cas': 'CAS',
                 'generation/fid_mobilenet_v2': 'FID (MobileNetV2)',
                 'generation/precision_mobilenet_v2': 'Precision (MobileNetV2)',
                 'generation/recall_mobilenet_v2': 'Recall (MobileNetV2)'},
        lower_is_better=['calibration/ece', 'generation/fid', 'generation/fid_mobilenet_v2'],
        log='work_dirs/fmnist_genrep_stage2/*/*.log',
        weights='work_dirs/fmnist_genrep_stage2/epoch_1.pth',
        pictures=dict(
            main_samples='work_dirs/fmnist_genrep_stage2/test/samples.png',
            main_reliability='work_dirs/fmnist_genrep_stage2/test/*/vis_data/vis_image/'
            'reliability_diagram_*.png')),
    perception=dict(
        family='fmnist_genrep',
        task='Image Classification',
        dataset='Fashion-MNIST',
        config='configs/genrep/fmnist_unet_cls.py',
        make='perception',
        results='work_dirs/fmnist_unet_cls/test/*/*.json',
        metrics={'accuracy/top1': 'Top 1 Accuracy'},
        log='work_dirs/fmnist_unet_cls/*/*.log',
        weights='work_dirs/fmnist_unet_cls/epoch_*.pth'),
    ood=dict(
        family='fmnist_ood',
        task='Image Classification',
        dataset='Fashion-MNIST',
        config='configs/genrep/fmnist_unet_textcls.py',
        make='ood',
        results='work_dirs/fmnist_unet_textcls/test/*/*.json',
        metrics={'accuracy/top1': 'Top 1 Accuracy'},
        log='work_dirs/fmnist_unet_textcls/*/*.log',
        weights='work_dirs/fmnist_unet_textcls/epoch_*.pth'),
    ood_shift=dict(
        family='fmnist_ood',
        task='Image Classification',
        dataset='Fashion-MNIST-Shift',
        config='configs/genrep/fmnist_shift_textcls.py',
        make='ood',
        results='work_dirs/fmnist_unet_textcls/test_shift/*/*.json',
        metrics={'accuracy/top1': 'Top 1 Accuracy'},
        log='work_dirs/fmnist_unet_textcls/*/*.log',
        weights='work_dirs/fmnist_unet_textcls/epoch_*.pth',
        pictures=dict(ood_shift_examples='data/fmnist_shift/examples.png')),
    seg=scenes_job(SEG, 'scenes_seg_unet', 'seg', picture='seg_overlay'),
    # A GenRep chain's make target trains and tests every stage; its later entries are then current.
    seg_genrep_stage1=scenes_job(SEG, 'scenes_seg_genrep_stage1', 'seg-genrep'),
    seg_genrep_stage1_nodistil=scenes_job(SEG, 'scenes_seg_genrep_stage1_nodistil', 'seg-genrep'),
    seg_genrep=scenes_job(SEG, 'scenes_seg_genrep_stage2', 'seg-genrep'),
    ovseg=scenes_job(OVSEG, 'scenes_ov_seg_unet', 'ovseg'),
    ovdet=scenes_job(OVDET, 'scenes_ovdet_genrep_stage1', 'ovdet', picture='ovdet_boxes'),
    ovdet_nodistil=scenes_job(OVDET, 'scenes_ovdet_genrep_stage1_nodistil', 'ovdet'),
    depth=scenes_job(DEPTH, 'scenes_depth_unet', 'depth', picture='depth_map'),
    depth_genrep_stage1=scenes_job(DEPTH, 'scenes_depth_genrep_stage1', 'depth-genrep'),
    depth_genrep_stage1_nodistil=scenes_job(DEPTH, 'scenes_depth_genrep_stage1_nodistil',
                                            'depth-genrep'),
    depth_genrep=scenes_job(DEPTH, 'scenes_depth_genrep_stage2', 'depth-genrep'),
)
