from .tasks import GENERATION, PERCEPTION, TASKS
from .visualization import sample_grid

__all__ = ['GENERATION', 'PERCEPTION', 'TASKS', 'sample_grid']
