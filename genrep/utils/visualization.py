"""Pictures of generated samples."""
from typing import Sequence

import torch
from PIL import Image, ImageDraw, ImageFont


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


def labelled_grid(images: torch.Tensor, rows: int, names: Sequence[str],
                  min_cell: int = 96) -> Image.Image:
    """:func:`sample_grid` with each column's class name written above it, the cells enlarged
    (nearest neighbour) to at least ``min_cell`` px wide so that the names fit."""
    grid = sample_grid(images, rows).convert('RGB')
    cols = images.shape[0] // rows
    if len(names) != cols:
        raise ValueError(f'labelled_grid: {len(names)} names for {cols} columns')
    scale = max(1, -(-min_cell // images.shape[-1]))
    grid = grid.resize((grid.width * scale, grid.height * scale), Image.NEAREST)
    cell = grid.width // cols
    font = ImageFont.load_default()
    header = 14
    canvas = Image.new('RGB', (grid.width, grid.height + header), 'white')
    canvas.paste(grid, (0, header))
    draw = ImageDraw.Draw(canvas)
    for col, name in enumerate(names):
        text = str(name)
        while text and draw.textlength(text, font=font) > cell - 4:
            text = text[:-1]
        draw.text((col * cell + 2, 1), text, fill='black', font=font)
    return canvas
