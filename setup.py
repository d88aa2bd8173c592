"""Installs genrep. Requirements come from requirements/*.txt (see tools/install.sh for the order
in which the OpenMMLab stack has to be installed on CPU torch)."""
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def parse_requirements(name):
    """Requirement lines of requirements/<name>.txt, without comments and blank lines."""
    with open(osp.join(HERE, 'requirements', f'{name}.txt')) as f:
        lines = (line.split('#', 1)[0].strip() for line in f)
        return [line for line in lines if line]


def read_version():
    namespace = {}
    with open(osp.join(HERE, 'genrep', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


setup(
    name='genrep',
    version=read_version(),
    description='GenRep: reconciling visual perception and generation in diffusion models '
    '(OpenMMLab plugins)',
    long_description=open(osp.join(HERE, 'README.md')).read() if osp.exists(
        osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'benchmarks', 'projects')),
    python_requires='>=3.10',
    install_requires=parse_requirements('runtime'),
    extras_require={
        'mim': parse_requirements('mminstall'),
        'tests': parse_requirements('tests'),
        'optional': parse_requirements('optional'),
    },
    license='Apache License 2.0',
    zip_safe=False,
)
