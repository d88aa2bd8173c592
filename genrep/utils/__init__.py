from .files import file_sha256, load_script
from .objectives import GENERATION, OBJECTIVES, PERCEPTION
from .visualization import labelled_grid, sample_grid

__all__ = ['GENERATION', 'PERCEPTION', 'OBJECTIVES', 'file_sha256', 'labelled_grid', 'load_script',
           'sample_grid']
