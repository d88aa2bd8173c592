"""The documentation: README.md and the Sphinx site under docs/.

Default tier: every internal link (file and heading anchor), every path, script and config named
in backticks or in a command, and every `make` target they name exists; the narrative pages build
with Sphinx's warnings as errors (``GENREP_DOCS_NO_API=1``: the API reference left out, seconds);
the API reference lists every module of the package. Slow tier: the whole site with the API
reference (autodoc imports genrep, torch and the toolkits)."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, load_tool

DOCS = osp.join(REPO_ROOT, 'docs')
LINK = re.compile(r'(?<!!)\[[^\]]*\]\(([^)\s]+)\)')
CODE_SPAN = re.compile(r'`([^`\n]+)`')
FENCE = re.compile(r'^(```|~~~)')
# A repository path: a top-level folder of the repository, then a file or folder name.
PATH = re.compile(r'^(configs|tools|benchmarks|demo|tests|genrep|projects|docs|requirements)'
                  r'/[\w./-]*$')
SCRIPT = re.compile(r'^[\w-]+\.(py|sh)$')
MAKE = re.compile(r'(?:^|\s|`)make ([a-z][a-z0-9-]*)')
# Files of upstream repositories the pages name (not in this repository, nor installed).
UPSTREAM = {
    'models.py': 'DiT', 'sample_ddp.py': 'DiT', 'evaluator.py': 'ADM (guided-diffusion)',
    'coco_stuff164k.py': 'mmsegmentation',
    'tools/dataset_converters/coco_stuff164k.py': 'mmsegmentation',
}
COMMAND = re.compile(r'^(?:[A-Z_]+=\S+\s+)*(?:python3? (?:-m \S+ )?)?((?:tools|benchmarks|demo)'
                     r'/\S+\.(?:py|sh))')


def pages():
    """README.md and every page of the site (docs/conf.py's ``site_pages``: the index's toctrees
    and the optional pages present)."""
    conf = load_tool('docs/conf.py')
    return [osp.join(REPO_ROOT, 'README.md')] + [osp.join(DOCS, name + '.md')
                                                  for name in conf.site_pages()]


def repo_files():
    """Every file name (basename) of the working tree, for configs named without their folder."""
    names = set()
    for root, dirs, files in os.walk(REPO_ROOT):
        dirs[:] = [d for d in dirs if not d.startswith('.') and d not in (
            'work_dirs', 'data', '_build', '__pycache__', 'node_modules')]
        names.update(files)
    return names


def toolkit_config(path: str) -> bool:
    """``configs/...`` of an installed toolkit (mmdet, mmseg, mmpretrain ship their configs)."""
    import importlib
    for name in ('mmdet', 'mmseg', 'mmpretrain'):
        root = osp.dirname(importlib.import_module(name).__file__)
        if osp.exists(osp.join(root, '.mim', path)):
            return True
    return False


def make_targets():
    with open(osp.join(REPO_ROOT, 'Makefile')) as f:
        return {m.group(1) for m in re.finditer(r'^([a-z][a-z0-9-]*)\s*:', f.read(), re.M)}


def slug(heading: str) -> str:
    """MyST's (and GitHub's) anchor of a heading: lower case, punctuation dropped, spaces as -."""
    text = re.sub(r'[`*_]', '', heading.strip().lower())
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def anchors(path):
    with open(path) as f:
        return {slug(line.lstrip('#')) for line in f if re.match(r'^#{1,6} ', line)}


def split_code(text):
    """(prose lines, code-block lines) of a Markdown page."""
    prose, code, inside = [], [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            inside = not inside
            continue
        (code if inside else prose).append(line)
    return prose, code


def problems(path, files=None, targets=None):
    """What a page names that does not exist: links, anchors, paths, scripts, make targets."""
    files = repo_files() if files is None else files
    targets = make_targets() if targets is None else targets
    with open(path) as f:
        text = f.read()
    prose, code = split_code(text)
    found = []
    here = osp.dirname(path)
    for target in LINK.findall('\n'.join(prose)):
        if re.match(r'^[a-z]+:', target):
            continue
        file_part, _, anchor = target.partition('#')
        resolved = osp.normpath(osp.join(here, file_part)) if file_part else path
        if not osp.exists(resolved):
            found.append(f'link {target}: no file {osp.relpath(resolved, REPO_ROOT)}')
        elif anchor and resolved.endswith('.md') and anchor not in anchors(resolved):
            found.append(f'link {target}: no heading #{anchor}')
    spans = CODE_SPAN.findall('\n'.join(prose))
    for span in spans:
        for word in span.split():
            word = word.strip('.,;:()')
            if re.search(r'[<>*{}\[\]$]|\.\.\.|/_build', word):
                continue  # a pattern, a placeholder, or the site's build output
            if word in UPSTREAM:
                continue
            if PATH.match(word) and not osp.exists(osp.join(REPO_ROOT, word)) \
                    and not (word.startswith('configs/') and toolkit_config(word)):
                found.append(f'path {word} does not exist')
            elif SCRIPT.match(word) and word not in files:
                found.append(f'script or config {word} does not exist')
    for line in code:
        command = COMMAND.match(line.strip())
        if command and not re.search(r'[<>*{}]', command.group(1)) \
                and not osp.exists(osp.join(REPO_ROOT, command.group(1))):
            found.append(f'command {command.group(1)} does not exist')
    named = MAKE.findall('\n'.join(spans) + '\n' + '\n'.join(code))
    found += [f'make target {name} is not in the Makefile' for name in named
              if name not in targets]
    return found


@pytest.mark.parametrize('page', pages(), ids=lambda p: osp.relpath(p, REPO_ROOT))
def test_every_link_path_script_and_make_target_exists(page):
    assert problems(page) == []


def test_the_checker_finds_what_is_missing(tmp_path):
    """A page with a dead link, a dead anchor, a missing config, script, command and target."""
    (tmp_path / 'other.md').write_text('# Other\n\n## A section\n')
    page = tmp_path / 'page.md'
    page.write_text('# Page\n\n[ok](other.md#a-section) [dead](missing.md) '
                    '[anchor](other.md#no-such) [web](https://example.org/x.md)\n'
                    '`configs/genrep/fmnist_genrep_stage1.py` `configs/genrep/nope.py` '
                    '`nope_ldm.py` `cub_ldm.py` `make main` `make nothing`\n\n'
                    '```bash\npython tools/train.py CONFIG\npython tools/nope.py X\n'
                    'GPUS=8 tools/gone.sh A\nmake test\n```\n')
    assert problems(str(page)) == [
        'link missing.md: no file ' + osp.relpath(str(tmp_path / 'missing.md'), REPO_ROOT),
        'link other.md#no-such: no heading #no-such',
        'path configs/genrep/nope.py does not exist',
        'script or config nope_ldm.py does not exist',
        'command tools/nope.py does not exist',
        'command tools/gone.sh does not exist',
        'make target nothing is not in the Makefile',
    ]


def test_the_api_reference_lists_every_module():
    """Found on disk (no import): every genrep/**/*.py but the packages' __init__ and version."""
    modules = set()
    for root, _, files in os.walk(osp.join(REPO_ROOT, 'genrep')):
        package = osp.relpath(root, REPO_ROOT).replace(os.sep, '.')
        modules.update(f'{package}.{name[:-3]}' for name in files
                       if name.endswith('.py') and name not in ('__init__.py', 'version.py'))
    with open(osp.join(DOCS, 'api.md')) as f:
        listed = set(re.findall(r'^\.\. automodule:: (\S+)$', f.read(), re.M))
    assert sorted(modules - listed) == [] and sorted(listed - modules) == []


def build(out_dir, with_api):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    if not with_api:
        env['GENREP_DOCS_NO_API'] = '1'
    return subprocess.run(
        [sys.executable, '-m', 'sphinx', '-W', '--keep-going', '-q', '-b', 'html', '-d',
         str(out_dir / 'doctrees'), DOCS, str(out_dir / 'html')],
        env=env, capture_output=True, text=True, timeout=900)


def test_the_pages_build_with_warnings_as_errors(tmp_path):
    proc = build(tmp_path, with_api=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = tmp_path / 'html'
    for page in ('index', 'get_started', 'dataset_preparation', 'weights_preparation',
                 'training_testing', 'genrep_method', 'inference', 'own_configs', 'results',
                 'model_zoo', 'architecture', 'decisions', 'changelog'):
        assert (html / f'{page}.html').is_file(), page
    index = (html / 'index.html').read_text()
    assert 'href="get_started.html"' in index and 'href="api.html"' not in index


def test_a_warning_fails_the_build(tmp_path):
    """The same build on a copy of the site with one dead cross-reference fails."""
    import shutil
    shutil.copytree(DOCS, tmp_path / 'docs', ignore=shutil.ignore_patterns('_build'))
    with open(tmp_path / 'docs' / 'changelog.md', 'a') as f:
        f.write('\nSee [a page that is gone](gone.md).\n')
    env = dict(os.environ, GENREP_DOCS_NO_API='1', PYTHONWARNINGS='ignore')
    proc = subprocess.run(
        [sys.executable, '-m', 'sphinx', '-W', '--keep-going', '-q', '-b', 'html',
         str(tmp_path / 'docs'), str(tmp_path / 'html')],
        env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert 'gone' in proc.stderr


@pytest.mark.slow
def test_the_whole_site_with_the_api_reference_builds(tmp_path):
    proc = build(tmp_path, with_api=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    api = (tmp_path / 'html' / 'api.html').read_text()
    for name in ('GenRep', 'ReverseChainPosterior', 'GradientAlignOptimWrapper',
                 'build_inferencer'):
        assert f'id="genrep.' in api and name in api, name
