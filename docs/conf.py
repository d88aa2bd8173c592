"""Sphinx configuration of genrep's documentation site (Sphinx with MyST Markdown, the furo theme).

    sphinx-build -W --keep-going -b html docs docs/_build/html

builds it with warnings as errors (tests/test_docs.py does, and checks every link and path the
pages name). The API reference is autodoc over the genrep package; the toolkits it imports are
installed by tools/install.sh, so nothing is mocked. ``GENREP_DOCS_NO_API=1`` leaves the API
reference out (the narrative pages build in seconds; autodoc imports torch and the toolkits).

The docstrings are written for readers of the code, in plain text with reST literals; a reST
slip inside one (an unmatched ``*`` of a product, an indented shape table) is logged, not made an
error: -W holds for the pages themselves and for autodoc's own warnings (a module that does not
import, a missing member).
"""
import logging
import os
import os.path as osp
import sys

DOCS = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, osp.dirname(DOCS))

project = 'genrep'
author = 'genrep contributors'
copyright = '2026, genrep contributors'

extensions = ['myst_parser', 'sphinx.ext.autodoc', 'sphinx.ext.napoleon',
              'sphinx.ext.viewcode']
source_suffix = {'.md': 'markdown'}
myst_enable_extensions = ['colon_fence', 'dollarmath']
myst_heading_anchors = 3
exclude_patterns = ['_build']
WITHOUT_API = os.environ.get('GENREP_DOCS_NO_API') == '1'
# Pages other sessions write; the index lists the ones present (a page still being written must
# not break the build).
OPTIONAL_PAGES = ('reliability', 'fidelity', 'paper_cost', 'pretraining')


def site_pages():
    """The pages of the site: those the index's toctrees name, and the optional ones present.
    Any other Markdown file under docs/ (a draft, a tool's output) stays out of the build."""
    with open(osp.join(DOCS, 'index.md')) as f:
        index = f.read()
    named = {line.strip() for block in index.split('```{toctree}')[1:]
             for line in block.split('```')[0].splitlines()
             if line.strip() and not line.strip().startswith((':', '<!--'))}
    present = {name for name in OPTIONAL_PAGES if osp.isfile(osp.join(DOCS, name + '.md'))}
    return ['index'] + sorted(named | present)


exclude_patterns += [name for name in os.listdir(DOCS)
                     if name.endswith('.md') and name[:-3] not in site_pages()]
if WITHOUT_API:
    exclude_patterns.append('api.md')
html_theme = 'furo'
html_title = 'genrep'

autodoc_default_options = {'members': True, 'show-inheritance': True}
autodoc_member_order = 'bysource'
autodoc_typehints = 'description'
napoleon_google_docstring = True
# Docstrings are written for readers of the code (reST-ish, Google-style sections); their
# cross-references into the toolkits cannot all resolve without those projects' inventories.
nitpicky = False
suppress_warnings = []

def _list_optional_pages(app, docname, source):
    if docname == 'index':
        present = [name for name in OPTIONAL_PAGES if osp.isfile(osp.join(DOCS, name + '.md'))]
        source[0] = source[0].replace('<!-- optional pages -->', '\n'.join(present))
        if WITHOUT_API:
            source[0] = source[0].replace('\napi\n', '\n')


class _DocstringMarkupFilter(logging.Filter):
    """Passes every record except docutils' markup warnings inside a Python docstring, which it
    logs at info level instead (they name the module and line)."""

    def filter(self, record):
        location = str(getattr(record, 'location', '') or '')
        if 'docstring of' in location and record.levelno >= logging.WARNING:
            logging.getLogger('sphinx.genrep').info('docstring markup: %s: %s', location,
                                                    record.getMessage())
            return False
        return True


def setup(app):
    app.connect('source-read', _list_optional_pages)
    for handler in logging.getLogger('sphinx').handlers:
        handler.filters.insert(0, _DocstringMarkupFilter())
