"""Pictures of generated samples."""
import torch
from PIL import Image


def sample_grid(images: torch.Tensor, rows: int) -> Image.Image:
    """[N, C, H, W] images in [-1, 1], class-major (``rows`` samples of class 0, then of class 1,
    ...), as one picture: column j holds class j, ``rows`` rows. C is 1 (gray) or 3 (RGB)."""
    n, c, h, w = images.shape
    if n % rows:
        raise ValueError(f'sample_grid: {n} images do not fill {rows} rows')
    pixels = ((images.detach().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()
    cols = n // rows
    grid = pixels.reshape(cols, rows, c, h, w).transpose(1, 3, 0, 4, 2).reshape(rows * h, cols * w, c)
    return Image.fromarray(grid[..., 0] if c == 1 else grid)
