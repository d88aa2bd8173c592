# The embedded jobs of the benchmark suite (tools/benchmark_suite.py), one entry each: a new job
# (or task) is one more entry. Keys of an entry:
#   family    the config family: one configs/genrep/metafiles/<family>.yaml per family
#   task, dataset    as the model zoo names them (OpenMMLab metafile 'Task' / 'Dataset')
#   config    the config whose figures these are (its file and _base_ files decide whether the
#             stored result is current)
#   make      the make target that trains and tests it; or `commands`, a list of shell commands
#   results   glob of the test result JSON (tools/test.py writes <work-dir>/<time>/<time>.json);
#             the newest match is read
#   metrics   {key in the result JSON: name in the table and the metafile}
#   lower_is_better    metric keys where smaller is better (ECE, FID, depth errors)
#   log, weights       globs of the training log and the checkpoint the metafile points to
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
        weights='work_dirs/fmnist_genrep_stage2/epoch_1.pth'),
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
        weights='work_dirs/fmnist_unet_textcls/epoch_*.pth'),
    seg=dict(
        family='scenes_seg',
        task='Semantic Segmentation',
        dataset='Scenes-ADE',
        config='configs/genrep/scenes_seg_unet.py',
        make='seg',
        results='work_dirs/scenes_seg_unet/test/*/*.json',
        metrics={'mIoU': 'mIoU', 'aAcc': 'aAcc'},
        log='work_dirs/scenes_seg_unet/*/*.log',
        weights='work_dirs/scenes_seg_unet/iter_*.pth'),
    seg_genrep=dict(
        family='scenes_seg',
        task='Semantic Segmentation',
        dataset='Scenes-ADE',
        config='configs/genrep/scenes_seg_genrep_stage2.py',
        make='seg-genrep',
        results='work_dirs/scenes_seg_genrep_stage2/test/*/*.json',
        metrics={'mIoU': 'mIoU', 'aAcc': 'aAcc'},
        log='work_dirs/scenes_seg_genrep_stage2/*/*.log',
        weights='work_dirs/scenes_seg_genrep_stage2/iter_*.pth'),
    ovseg=dict(
        family='scenes_ov_seg',
        task='Open Vocabulary Semantic Segmentation',
        dataset='Scenes-COCO-Stuff',
        config='configs/genrep/scenes_ov_seg_unet.py',
        make='ovseg',
        results='work_dirs/scenes_ov_seg_unet/test/*/*.json',
        metrics={'mIoU': 'mIoU', 'mIoU_seen': 'mIoU (seen)', 'mIoU_unseen': 'mIoU (unseen)'},
        log='work_dirs/scenes_ov_seg_unet/*/*.log',
        weights='work_dirs/scenes_ov_seg_unet/iter_*.pth'),
    ovdet=dict(
        family='scenes_ovdet',
        task='Open Vocabulary Object Detection',
        dataset='Scenes-COCO',
        config='configs/genrep/scenes_ovdet_unet.py',
        make='ovdet',
        results='work_dirs/scenes_ovdet_unet/test/*/*.json',
        metrics={'coco/bbox_mAP_50': 'AP50'},
        log='work_dirs/scenes_ovdet_unet/*/*.log',
        weights='work_dirs/scenes_ovdet_unet/iter_*.pth'),
    depth=dict(
        family='scenes_depth',
        task='Depth Estimation',
        dataset='Scenes-NYU',
        config='configs/genrep/scenes_depth_unet.py',
        make='depth',
        results='work_dirs/scenes_depth_unet/test/*/*.json',
        metrics={'rmse': 'RMSE', 'abs_rel': 'AbsRel', 'd1': 'delta1'},
        lower_is_better=['rmse', 'abs_rel'],
        log='work_dirs/scenes_depth_unet/*/*.log',
        weights='work_dirs/scenes_depth_unet/iter_*.pth'),
    depth_genrep=dict(
        family='scenes_depth',
        task='Depth Estimation',
        dataset='Scenes-NYU',
        config='configs/genrep/scenes_depth_genrep_stage2.py',
        make='depth-genrep',
        results='work_dirs/scenes_depth_genrep_stage2/test/*/*.json',
        metrics={'rmse': 'RMSE', 'abs_rel': 'AbsRel', 'd1': 'delta1'},
        lower_is_better=['rmse', 'abs_rel'],
        log='work_dirs/scenes_depth_genrep_stage2/*/*.log',
        weights='work_dirs/scenes_depth_genrep_stage2/iter_*.pth'),
)
