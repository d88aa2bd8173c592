# The standard open-vocabulary COCO split (OVR-CNN, Zareian et al. 2021; ViLD; BARON): 48 base
# classes trained with boxes, 17 novel classes seen only by name at test, in COCO's category order.
# tools/dataset_converters/ov_coco_split.py reads this file to write the base-only training json.
ov_coco_base_classes = (
    'person', 'bicycle', 'car', 'motorcycle', 'train', 'truck', 'boat', 'bench', 'bird', 'horse',
    'sheep', 'bear', 'zebra', 'giraffe', 'backpack', 'handbag', 'suitcase', 'frisbee', 'skis',
    'kite', 'surfboard', 'bottle', 'fork', 'spoon', 'bowl', 'banana', 'apple', 'sandwich',
    'orange', 'broccoli', 'carrot', 'pizza', 'donut', 'chair', 'bed', 'toilet', 'tv', 'laptop',
    'mouse', 'remote', 'microwave', 'oven', 'toaster', 'refrigerator', 'book', 'clock', 'vase',
    'toothbrush')
ov_coco_novel_classes = ('airplane', 'bus', 'cat', 'dog', 'cow', 'elephant', 'umbrella', 'tie',
                         'snowboard', 'skateboard', 'cup', 'knife', 'cake', 'couch', 'keyboard',
                         'sink', 'scissors')
# The 65 classes of the OV-COCO evaluation, in COCO's category order.
ov_coco_classes = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
    'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe',
    'backpack', 'umbrella', 'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'kite',
    'skateboard', 'surfboard', 'bottle', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana',
    'apple', 'sandwich', 'orange', 'broccoli', 'carrot', 'pizza', 'donut', 'cake', 'chair',
    'couch', 'bed', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'microwave', 'oven',
    'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors', 'toothbrush')
