"""Line plots written as PNG files with NumPy and zlib only (no plotting library needed
on a fresh machine): loss curves and gradient-norm profiles.

    rnncore.plot.line_plot("loss.png", {"train": (steps, losses)}, title="loss",
                           xlabel="step", ylabel="bits per char")
"""

from __future__ import annotations

import math
import os
import struct
import tempfile
import zlib

import numpy as np

# 5x7 bitmap font: each glyph is 7 rows of 5 columns ('#' = ink).
_GLYPHS = {
    "0": [" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "],
    "1": ["  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "],
    "2": [" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"],
    "3": ["#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "],
    "4": ["   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "],
    "5": ["#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "],
    "6": ["  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "],
    "7": ["#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "],
    "8": [" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "],
    "9": [" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "],
    "A": [" ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"],
    "B": ["#### ", "#   #", "#   #", "#### ", "#   #", "#   #", "#### "],
    "C": [" ### ", "#   #", "#    ", "#    ", "#    ", "#   #", " ### "],
    "D": ["###  ", "#  # ", "#   #", "#   #", "#   #", "#  # ", "###  "],
    "E": ["#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####"],
    "F": ["#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    "],
    "G": [" ### ", "#   #", "#    ", "# ###", "#   #", "#   #", " ####"],
    "H": ["#   #", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"],
    "I": [" ### ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "],
    "J": ["  ###", "   # ", "   # ", "   # ", "   # ", "#  # ", " ##  "],
    "K": ["#   #", "#  # ", "# #  ", "##   ", "# #  ", "#  # ", "#   #"],
    "L": ["#    ", "#    ", "#    ", "#    ", "#    ", "#    ", "#####"],
    "M": ["#   #", "## ##", "# # #", "# # #", "#   #", "#   #", "#   #"],
    "N": ["#   #", "#   #", "##  #", "# # #", "#  ##", "#   #", "#   #"],
    "O": [" ### ", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "],
    "P": ["#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    "],
    "Q": [" ### ", "#   #", "#   #", "#   #", "# # #", "#  # ", " ## #"],
    "R": ["#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #"],
    "S": [" ####", "#    ", "#    ", " ### ", "    #", "    #", "#### "],
    "T": ["#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  "],
    "U": ["#   #", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "],
    "V": ["#   #", "#   #", "#   #", "#   #", "#   #", " # # ", "  #  "],
    "W": ["#   #", "#   #", "#   #", "# # #", "# # #", "# # #", " # # "],
    "X": ["#   #", "#   #", " # # ", "  #  ", " # # ", "#   #", "#   #"],
    "Y": ["#   #", "#   #", " # # ", "  #  ", "  #  ", "  #  ", "  #  "],
    "Z": ["#####", "    #", "   # ", "  #  ", " #   ", "#    ", "#####"],
    " ": ["     "] * 7,
    ".": ["     ", "     ", "     ", "     ", "     ", " ##  ", " ##  "],
    ",": ["     ", "     ", "     ", "     ", " ##  ", "  #  ", " #   "],
    "-": ["     ", "     ", "     ", "#####", "     ", "     ", "     "],
    "+": ["     ", "  #  ", "  #  ", "#####", "  #  ", "  #  ", "     "],
    "=": ["     ", "     ", "#####", "     ", "#####", "     ", "     "],
    "(": ["   # ", "  #  ", " #   ", " #   ", " #   ", "  #  ", "   # "],
    ")": [" #   ", "  #  ", "   # ", "   # ", "   # ", "  #  ", " #   "],
    "/": ["     ", "    #", "   # ", "  #  ", " #   ", "#    ", "     "],
    ":": ["     ", " ##  ", " ##  ", "     ", " ##  ", " ##  ", "     "],
    "%": ["##   ", "##  #", "   # ", "  #  ", " #   ", "#  ##", "   ##"],
    "_": ["     ", "     ", "     ", "     ", "     ", "     ", "#####"],
    "^": ["  #  ", " # # ", "#   #", "     ", "     ", "     ", "     "],
    "?": [" ### ", "#   #", "    #", "   # ", "  #  ", "     ", "  #  "],
    "|": ["  #  "] * 7,
    "*": ["     ", "# # #", " ### ", "#####", " ### ", "# # #", "     "],
}
_FONT = {ch: np.array([[c == "#" for c in row] for row in rows], bool) for ch, rows in _GLYPHS.items()}

COLORS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75)]


class Canvas:
    """An RGB image with pixel-level drawing: lines, rectangles, text."""

    def __init__(self, width, height, background=(255, 255, 255)):
        self.img = np.empty((height, width, 3), np.uint8)
        self.img[...] = background

    def rect(self, x0, y0, x1, y1, color):
        h, w = self.img.shape[:2]
        x0, x1 = max(0, min(x0, x1)), min(w, max(x0, x1) + 1)
        y0, y1 = max(0, min(y0, y1)), min(h, max(y0, y1) + 1)
        if x0 < x1 and y0 < y1:
            self.img[y0:y1, x0:x1] = color

    def line(self, x0, y0, x1, y1, color, width=1):
        n = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
        xs = np.rint(np.linspace(x0, x1, n)).astype(int)
        ys = np.rint(np.linspace(y0, y1, n)).astype(int)
        r = width // 2
        for dx in range(-r, width - r):
            for dy in range(-r, width - r):
                xx, yy = xs + dx, ys + dy
                ok = (xx >= 0) & (xx < self.img.shape[1]) & (yy >= 0) & (yy < self.img.shape[0])
                self.img[yy[ok], xx[ok]] = color

    def text(self, x, y, s, color=(0, 0, 0), scale=1, anchor="left"):
        """Draw s with its top at y; anchor left, center or right at x."""
        width = text_width(s, scale)
        if anchor == "center":
            x -= width // 2
        elif anchor == "right":
            x -= width
        for ch in s:
            glyph = _FONT.get(ch.upper(), _FONT["?"])
            for gy, gx in zip(*np.nonzero(glyph)):
                self.rect(x + gx * scale, y + gy * scale, x + gx * scale + scale - 1, y + gy * scale + scale - 1,
                          color)
            x += 6 * scale

    def save(self, path):
        write_png(path, self.img)


def text_width(s, scale=1):
    return max(0, 6 * len(s) - 1) * scale


def write_png(path, img):
    """Write an (H, W, 3) uint8 array as a PNG, atomically (temporary file, then rename)."""
    img = np.ascontiguousarray(img, np.uint8)
    h, w = img.shape[:2]
    raw = np.concatenate([np.zeros((h, 1), np.uint8), img.reshape(h, w * 3)], axis=1).tobytes()

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".png", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(png)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _ticks(lo, hi, n=5):
    """About n round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((s * mag for s in (1, 2, 5, 10) if s * mag >= raw), default=10 * mag)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


def _fmt(v):
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-2:
        return f"{v:.0e}".replace("e+0", "e").replace("e-0", "e-")
    return f"{v:.6g}"


def line_plot(path, series, *, title="", xlabel="", ylabel="", logy=False, width=720, height=440):
    """Plot named series {name: (x, y)} as lines and save a PNG (atomically).

    logy: logarithmic y axis (non-positive values are dropped)."""
    c = Canvas(width, height)
    left, right, top, bottom = 78, width - 20, 40, height - 56
    xs_all, ys_all = [], []
    clean = {}
    for name, (x, y) in series.items():
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        ok = np.isfinite(x) & np.isfinite(y) & ((y > 0) if logy else True)
        x, y = x[ok], (np.log10(y[ok]) if logy else y[ok])
        clean[name] = (x, y)
        xs_all.append(x)
        ys_all.append(y)
    xs = np.concatenate(xs_all) if xs_all else np.zeros(0)
    ys = np.concatenate(ys_all) if ys_all else np.zeros(0)
    x0, x1 = (float(xs.min()), float(xs.max())) if xs.size else (0.0, 1.0)
    y0, y1 = (float(ys.min()), float(ys.max())) if ys.size else (0.0, 1.0)
    if x1 <= x0:
        x1 = x0 + 1
    if y1 <= y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = 0.05 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad
    px = lambda v: left + (v - x0) / (x1 - x0) * (right - left)  # noqa: E731
    py = lambda v: bottom - (v - y0) / (y1 - y0) * (bottom - top)  # noqa: E731
    grid, ink = (225, 225, 225), (0, 0, 0)
    if logy:  # whole decades, at most about 10 of them
        step = max(1, math.ceil((y1 - y0) / 10))
        yt = [v for v in range(math.ceil(y0), math.floor(y1) + 1) if v % step == 0]
    else:
        yt = _ticks(y0, y1)
    for v in yt:
        yy = int(py(v))
        c.line(left, yy, right, yy, grid)
        c.text(left - 6, yy - 3, _fmt(10.0 ** v) if logy else _fmt(v), ink, anchor="right")
    for v in _ticks(x0, x1):
        xx = int(px(v))
        c.line(xx, top, xx, bottom, grid)
        c.text(xx, bottom + 6, _fmt(v), ink, anchor="center")
    c.line(left, top, left, bottom, ink)
    c.line(left, bottom, right, bottom, ink)
    for i, (name, (x, y)) in enumerate(clean.items()):
        color = COLORS[i % len(COLORS)]
        pts = [(px(a), py(b)) for a, b in zip(x, y)]
        for (ax, ay), (bx, by) in zip(pts, pts[1:]):
            c.line(ax, ay, bx, by, color, width=2)
        if len(pts) == 1:
            c.rect(int(pts[0][0]) - 2, int(pts[0][1]) - 2, int(pts[0][0]) + 2, int(pts[0][1]) + 2, color)
        ly = top + 6 + 14 * i
        c.rect(right - 150, ly + 2, right - 138, ly + 5, color)
        c.text(right - 132, ly, name[:20], ink)
    c.text(width // 2, 12, title, ink, scale=2, anchor="center")
    c.text((left + right) // 2, height - 22, xlabel, ink, anchor="center")
    c.text(8, top - 16, ylabel, ink)
    c.save(path)
