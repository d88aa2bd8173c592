from .tasks import GENERATION, PERCEPTION, TASKS
from .visualization import labelled_grid, sample_grid

__all__ = ['GENERATION', 'PERCEPTION', 'TASKS', 'labelled_grid', 'sample_grid']
