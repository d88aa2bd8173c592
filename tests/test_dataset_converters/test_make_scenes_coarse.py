"""The scenes tool's super-category detection json (the vocabulary of the CPU open-vocabulary
detection job): the same boxes and masks as the fine json, each named by its object's
super-category, novel super-categories unannotated in train, read by mmdet's CocoDataset."""
from test_make_scenes import load_json, scenes, sources, tool  # noqa: F401 (fixtures)
from test_make_scenes import pytestmark as make_scenes_mark

pytestmark = make_scenes_mark


def test_coarse_json_renames_the_same_annotations_by_super_category(scenes):  # noqa: F811
    from pycocotools.coco import COCO
    root = scenes / 'coco/annotations'
    split = load_json(root / 'category_split_coarse.json')
    coarse = load_json(scenes / 'ade/classes.json')['classes']
    assert sorted(split['base'] + split['novel']) == sorted(coarse)
    assert len(split['novel']) == round(0.25 * len(coarse)) and split['novel']
    for name, keep in (('train', split['base']), ('val', coarse)):
        fine = load_json(root / f'instances_{name}.json')
        renamed = COCO(str(root / f'instances_{name}_coarse.json'))
        assert [c['name'] for c in renamed.loadCats(renamed.getCatIds())] == \
            [c for c in coarse if c in keep]
        assert [c['id'] for c in renamed.loadCats(renamed.getCatIds())] == \
            [coarse.index(c) + 1 for c in coarse if c in keep]
        assert renamed.dataset['images'] == fine['images']
        # walk the placements of meta/<split>.json in annotation order
        meta = load_json(scenes / f'meta/{name}.json')
        records = {i + 1: r['objects'] for i, r in enumerate(meta)}
        expected, index = [], {}
        for ann in fine['annotations']:
            k = index.get(ann['image_id'], 0)
            index[ann['image_id']] = k + 1
            obj = records[ann['image_id']][k]
            assert ann['category_id'] == [c['id'] for c in fine['categories']
                                          if c['name'] == obj['name']][0]
            if obj['coarse'] in keep:
                expected.append((ann['image_id'], ann['bbox'], ann['segmentation']['counts'],
                                 obj['coarse']))
        got = [(a['image_id'], a['bbox'], a['segmentation']['counts'],
                renamed.loadCats(a['category_id'])[0]['name'])
               for a in renamed.loadAnns(renamed.getAnnIds())]
        assert got == expected
        if name == 'train':
            assert all(c not in split['novel'] for *_, c in got)


def test_coarse_json_loads_in_mmdet_with_the_ov_metainfo(scenes):  # noqa: F811
    import genrep  # noqa: F401 (torchvision before mmdet)
    from mmdet.datasets import CocoDataset
    split = load_json(scenes / 'coco/annotations/category_split_coarse.json')
    coarse = load_json(scenes / 'ade/classes.json')['classes']
    train = CocoDataset(data_root=str(scenes / 'coco'),
                        ann_file='annotations/instances_train_coarse.json',
                        data_prefix=dict(img='train2017/'), metainfo=dict(classes=split['base']),
                        filter_cfg=dict(filter_empty_gt=True), pipeline=[])
    val = CocoDataset(data_root=str(scenes / 'coco'),
                      ann_file='annotations/instances_val_coarse.json',
                      data_prefix=dict(img='val2017/'), test_mode=True,
                      metainfo=dict(classes=coarse, base_classes=split['base'],
                                    novel_classes=split['novel']), pipeline=[])
    assert len(train) > 0 and len(val) == 6
    labels = [i['bbox_label'] for d in train for i in d['instances']]
    assert labels and max(labels) < len(split['base'])
    assert val.metainfo['novel_classes'] == split['novel']
