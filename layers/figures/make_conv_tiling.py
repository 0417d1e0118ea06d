#!/usr/bin/python3
"""Draws layers/figures/conv_tiling.svg, the figure of layers/conv2d.md: which input pixels one
unit of work of each CPU convolution algorithm reads, on an 8x8 image with 'same' zero padding
(the grey ring) and a 3x3 filter.

Run: /usr/bin/python3 layers/figures/make_conv_tiling.py [OUTPUT]   (plain Python; rewrites the
SVG beside this script, or writes OUTPUT; tests/docs/test_network_figures.sh compares the two)

- gemm (im2col + GEMM): one output pixel reads its 3x3 window, copied into one row of col(x);
- direct: a register tile of 6 output pixels in a row reads a 3 x 8 strip straight from the
  padded image (no copy);
- winograd4, F(4x4, 3x3): a 4x4 output tile reads a 6x6 patch; neighbouring tiles' patches
  overlap by 2 pixels (m + r - 1 = 4 + 3 - 1 = 6).
"""
import os
import sys

CELL, GRID = 20, 10  # 8x8 image plus the padding ring: rows and columns -1..8
BLUE, ORANGE, GREEN, GREY = "#9ecae1", "#fdae6b", "#a1d99b", "#eeeeee"


def grid(x0, y0, filled):
    """The padded 10x10 grid at (x0, y0); `filled` maps (row, column) in -1..8 to a colour."""
    out = []
    for r in range(-1, GRID - 1):
        for c in range(-1, GRID - 1):
            pad = r < 0 or c < 0 or r > 7 or c > 7
            colour = filled.get((r, c), GREY if pad else "white")
            out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="%s" stroke="%s"%s/>'
                       % (x0 + (c + 1) * CELL, y0 + (r + 1) * CELL, CELL, CELL, colour, "#bbb" if pad else "#888",
                          ' stroke-dasharray="2,2"' if pad else ""))
    return out


def outline(x0, y0, r0, c0, rows, cols, colour, dashed=False, width=2.5):
    return ('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="%s" stroke-width="%g"%s/>'
            % (x0 + (c0 + 1) * CELL, y0 + (r0 + 1) * CELL, cols * CELL, rows * CELL, colour, width,
               ' stroke-dasharray="6,3"' if dashed else ""))


def text(x, y, words, size=12, weight="normal", anchor="start"):
    return '<text x="%d" y="%d" font-size="%d" font-weight="%s" text-anchor="%s">%s</text>' % (
        x, y, size, weight, anchor, words.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def lines(x, y, rows, size=12):
    return [text(x, y + i * (size + 5), row, size) for i, row in enumerate(rows)]


def draw():
    width, height, top = 1050, 470, 58
    svg = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
           'font-family="sans-serif">' % (width, height, width, height),
           '<title>What one unit of work of each CPU convolution algorithm reads</title>',
           '<rect width="100%" height="100%" fill="white"/>',
           text(20, 24, "What one unit of work reads: 8x8 image, 'same' zero padding (grey ring), 3x3 filter",
                15, "bold")]
    # gemm: one output pixel (3, 4), its window rows 2..4, columns 3..5 -> one row of col(x).
    x0 = 20
    svg.append(text(x0, top - 12, "gemm: im2col + GEMM", 13, "bold"))
    window = {(r, c): BLUE for r in range(2, 5) for c in range(3, 6)}
    window[(3, 4)] = "#3182bd"
    svg += grid(x0, top, window)
    svg.append(outline(x0, top, 2, 3, 3, 3, "#08519c"))
    matrix_y = top + GRID * CELL + 20
    svg.append('<rect x="%d" y="%d" width="90" height="110" fill="white" stroke="#444"/>' % (x0, matrix_y))
    svg.append('<rect x="%d" y="%d" width="90" height="10" fill="%s" stroke="#08519c"/>' % (x0, matrix_y + 50, BLUE))
    svg.append(text(x0 + 45, matrix_y - 4, "col(x)", 11, anchor="middle"))
    svg.append(text(x0 + 105, matrix_y + 60, "x", 14))
    svg.append('<rect x="%d" y="%d" width="40" height="90" fill="white" stroke="#444"/>' % (x0 + 122, matrix_y + 10))
    svg.append(text(x0 + 142, matrix_y + 4, "W", 11, anchor="middle"))
    svg.append(text(x0 + 172, matrix_y + 60, "=", 14))
    svg.append('<rect x="%d" y="%d" width="40" height="110" fill="white" stroke="#444"/>' % (x0 + 188, matrix_y))
    svg.append('<rect x="%d" y="%d" width="40" height="10" fill="#3182bd" stroke="#08519c"/>' % (x0 + 188, matrix_y + 50))
    svg.append(text(x0 + 208, matrix_y - 4, "y", 11, anchor="middle"))
    svg += lines(x0, matrix_y + 135, [
        "The 3x3 window of one output pixel is copied",
        "into one row of col(x): R*S*C values, (i, j, c)",
        "order. col(x) (N*H*W, R*S*C) x W (R*S*C, K) = y:",
        "one GEMM, at the cost of a 9-fold copy."], 11)
    # direct: a register tile of 6 output pixels, row 3, columns 1..6, reads rows 2..4, columns 0..7.
    x0 = 370
    svg.append(text(x0, top - 12, "direct: register tiles", 13, "bold"))
    tile = {(r, c): "#fdd0a2" for r in range(2, 5) for c in range(0, 8)}
    tile.update({(3, c): "#e6550d" for c in range(1, 7)})
    svg += grid(x0, top, tile)
    svg.append(outline(x0, top, 2, 0, 3, 8, "#a63603"))
    svg.append(outline(x0, top, 3, 1, 1, 6, "#7f2704", width=3))
    svg += lines(x0, top + GRID * CELL + 40, [
        "6 output pixels (dark) x 32-64 output channels",
        "accumulate in registers. For each tap (i, j) and",
        "input channel c, one input value per pixel is",
        "broadcast and multiplied into the tile with the",
        "repacked filter: the tile reads a 3 x 8 strip",
        "(light) of the padded image in place, no copy.",
        "(6-12 pixels per tile, by vector width.)"], 11)
    # winograd4: the output tile rows 0..3, columns 0..3 reads the patch rows -1..4, columns -1..4;
    # the next tile (columns 4..7) reads columns 3..8: 2 columns shared.
    x0 = 720
    svg.append(text(x0, top - 12, "winograd4: F(4x4, 3x3)", 13, "bold"))
    patch = {(r, c): "#c7e9c0" for r in range(-1, 5) for c in range(-1, 5)}
    patch.update({(r, c): "#31a354" for r in range(0, 4) for c in range(0, 4)})
    svg += grid(x0, top, patch)
    svg.append(outline(x0, top, -1, -1, 6, 6, "#006d2c"))
    svg.append(outline(x0, top, -1, 3, 6, 6, "#006d2c", dashed=True))
    for k in (0, 4, 8):  # the 4x4 output tiles of the image
        svg.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#222" stroke-width="1.5"/>'
                   % (x0 + (k + 1) * CELL, top + CELL, x0 + (k + 1) * CELL, top + 9 * CELL))
        svg.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#222" stroke-width="1.5"/>'
                   % (x0 + CELL, top + (k + 1) * CELL, x0 + 9 * CELL, top + (k + 1) * CELL))
    svg += lines(x0, top + GRID * CELL + 40, [
        "A 4x4 output tile (dark) reads a 6x6 patch d",
        "(solid); the next tile's patch (dashed) shares",
        "2 columns. V = B^T d B, U = G g G^T; per point",
        "of the 6x6 transform, a product over channels",
        "(tiles, C) x (C, K); then Y = A^T M A. 36",
        "multiplies per 16 outputs and channel pair,",
        "against 16 x 9 = 144 for the direct sum."], 11)
    svg.append("</svg>")
    return "\n".join(svg) + "\n"


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                               "conv_tiling.svg")
    temporary = path + ".tmp"
    with open(temporary, "w") as out:  # written whole, then renamed over the old figure
        out.write(draw())
    os.replace(temporary, path)
    print("wrote", path)
