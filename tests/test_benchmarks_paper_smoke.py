"""benchmarks/paper_smoke.py's stand-in LVIS vocabulary: an OV-LVIS config whose categories file is
not here reads one with LVIS v1's counts (the training vocabulary of 866 common and frequent
names, 1203 in all), and a config whose file is present keeps it; the results table names the
stand-in; and the synthetic batch's labels are the task's."""
import json

from mmengine.registry import init_default_scope

from benchmarks.paper_models import load_config
from benchmarks.paper_smoke import standin_lvis_root, table, use_standin_vocabulary
from genrep.models.heads.vocabulary import dataset_class_names


def test_ov_lvis_reads_the_standin_categories(tmp_path):
    init_default_scope('mmdet')
    root = standin_lvis_root(str(tmp_path))
    with open(f'{root}/annotations/lvis_v1_categories.json') as f:
        categories = json.load(f)
    counts = {k: sum(c['frequency'] == k for c in categories) for k in 'rcf'}
    assert counts == dict(r=337, c=461, f=405)
    assert len({c['id'] for c in categories}) == 1203

    model, used = use_standin_vocabulary(load_config('ov_lvis_ldm').model.to_dict(), root)
    assert used
    for vocabulary in (model['backbone']['class_prompts']['class_names'],
                       model['roi_head']['bbox_head']['class_names']):
        assert vocabulary['data_root'] == root
        names = dataset_class_names(vocabulary)
        assert len(names) == 866 and names[0] == 'lvis category 338'  # the first common id


def test_present_files_and_other_configs_are_kept(tmp_path):
    coco = load_config('ov_coco_ldm').model.to_dict()
    assert use_standin_vocabulary(coco, str(tmp_path)) == (coco, False)
    lvis = load_config('ov_lvis_ldm').model.to_dict()
    real_root = tmp_path / 'lvis'
    (real_root / 'annotations').mkdir(parents=True)
    (real_root / 'annotations' / 'lvis_v1_categories.json').write_text('[]')

    def point(value):
        if isinstance(value, dict):
            if value.get('type') == 'genrep.LVISV1VocabularyDataset':
                return dict(value, data_root=str(real_root))
            return {k: point(v) for k, v in value.items()}
        return value

    lvis = point(lvis)
    assert use_standin_vocabulary(lvis, str(tmp_path / 'standin')) == (lvis, False)


def test_table_names_the_standin():
    row = dict(config='ov_lvis_ldm', input='832x1088', status='pass', peak_rss_gib=20.0,
               note='stand-in LVIS v1 categories file: placeholder names')
    assert table({'ov_lvis_ldm': row}).splitlines()[-1].endswith(
        '| pass (stand-in LVIS v1 categories file: placeholder names) |')


def test_synthetic_labels_follow_the_task_head():
    """A DiT backbone has no class table of the task: the synthetic batch's labels come from the
    head (ADE20K's 150, OV-COCO's 48 base classes), never from ImageNet's 1000."""
    from benchmarks.paper_models import num_classes_of, synthetic_batch
    init_default_scope('mmseg')
    assert num_classes_of(load_config('ade20k_dit')) == 150
    init_default_scope('mmdet')
    cfg = load_config('ov_coco_dit')
    assert num_classes_of(cfg) == 48
    _, samples = synthetic_batch(cfg, (64, 64), batch=2, num_objects=30)
    labels = [int(v) for s in samples for v in s.gt_instances.labels]
    assert max(labels) < 48 and len(labels) == 60
    assert num_classes_of(load_config('ov_lvis_dit')) == 866  # common + frequent
