from .visualization import sample_grid

__all__ = ['sample_grid']
