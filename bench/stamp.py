"""A capture-time stamp drawn into a picture that survives lossy video codecs.

The pipeline bench measures glass-to-glass latency: the synthetic camera draws
the wall-clock time it made a frame into the frame itself, and a viewer reads it
back after JPEG, the daemon's decode, a VP8 or H.264 encode, RTP and the
viewer's decode. Metadata (RTP timestamps, pts) does not survive that trip
end to end, pixels do.

The stamp is a grid of pure black and pure white square cells in the top-left
corner, inside a white quiet border one cell wide. Cells are whole macroblocks
(16 px, or a multiple of 16 px on larger pictures) aligned to the macroblock
grid, so each one is coded as a flat block: codecs reproduce flat blocks
almost exactly, and the edges they blur sit between cells, away from the
centre the reader averages. Black and white have neutral chroma, so 4:2:0
subsampling changes nothing.

Bit layout (56 bits, most significant first, row by row):

====== ======================================================
bits   meaning
====== ======================================================
32     wall-clock milliseconds (``time.time_ns() // 1_000_000``) mod 2**32
16     frame sequence number mod 2**16
8      CRC-8 of the 48 bits above (see :func:`_crc8`)
====== ======================================================

A white cell is a 1. The check turns any picture that is not a stamp (or a
stamp the codec damaged) into ``None`` instead of a plausible wrong time.
"""

from __future__ import annotations

from typing import Any, Final

import attrs
import numpy as np
import numpy.typing as npt

__all__ = [
    "STAMP_BITS",
    "STAMP_COLUMNS",
    "STAMP_ROWS",
    "Stamp",
    "cell_size",
    "latency_ms",
    "read_stamp",
    "stamp_region",
    "write_stamp",
]

WALL_BITS: Final = 32
SEQUENCE_BITS: Final = 16
CHECK_BITS: Final = 8
STAMP_BITS: Final = WALL_BITS + SEQUENCE_BITS + CHECK_BITS
"""56: 32 bits of wall-clock ms, 16 of sequence number, 8 of CRC."""

STAMP_COLUMNS: Final = 14
STAMP_ROWS: Final = 4
assert STAMP_COLUMNS * STAMP_ROWS == STAMP_BITS

BORDER_CELLS: Final = 1
"""Width of the white quiet border, in cells: it separates the grid from
whatever the picture has around it, so the outer cells code as cleanly as
the inner ones."""

MACROBLOCK: Final = 16
"""VP8 and H.264 code 16×16 macroblocks; a cell is a whole number of them."""

REFERENCE_WIDTH: Final = 640
"""Up to this width a cell is one macroblock; it grows by one macroblock per
further 640 px so the stamp keeps roughly the same share of the picture."""

THRESHOLD: Final = 128
MARGIN: Final = 40
"""A cell whose centre mean lies within this distance of :data:`THRESHOLD`
is neither black nor white: the picture holds no stamp (grey, noise) and the
reader says so rather than guessing a bit. Codec-decoded cells stay far
outside it (limited-range black is 16, white 235)."""

_CRC_POLYNOMIAL: Final = 0x07
_CRC_INIT: Final = 0x00
_CRC_XOR_OUT: Final = 0x55
"""CRC-8/ITU (CRC-8/ATM with ``0x55`` out). The non-zero final XOR matters: a
plain CRC of all-zero data is zero, so an all-black region would pass."""

Luma = npt.NDArray[np.uint8]
Image = npt.NDArray[np.uint8]


@attrs.frozen
class Stamp:
    """What a stamp carries (both fields already reduced to their bit width)."""

    wall_ms: int
    """Wall-clock milliseconds when the frame was made, mod 2**32."""
    sequence: int
    """Frame sequence number, mod 2**16."""


def cell_size(width: int) -> int:
    """Side of one cell in pixels for a picture ``width`` pixels wide.

    Writer and reader both derive it from the width alone, so nothing else has
    to travel with the picture: 16 px up to 1279 px wide, 32 px from 1280,
    48 px from 1920, and so on.
    """
    return MACROBLOCK * max(1, width // REFERENCE_WIDTH)


def stamp_region(width: int) -> tuple[int, int]:
    """(width, height) in pixels of the stamp including its quiet border."""
    cell = cell_size(width)
    return (
        (STAMP_COLUMNS + 2 * BORDER_CELLS) * cell,
        (STAMP_ROWS + 2 * BORDER_CELLS) * cell,
    )


def _crc8(data: bytes) -> int:
    """CRC-8, polynomial x^8 + x^2 + x + 1, bitwise (6 bytes: no table needed)."""
    crc = _CRC_INIT
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ _CRC_POLYNOMIAL) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc ^ _CRC_XOR_OUT


def _encode(wall_ms: int, sequence: int) -> int:
    data = ((wall_ms % (1 << WALL_BITS)) << SEQUENCE_BITS) | (sequence % (1 << SEQUENCE_BITS))
    return (data << CHECK_BITS) | _crc8(data.to_bytes(6, "big"))


_STAMP_BYTES: Final = STAMP_BITS // 8


def write_stamp(image: Image, wall_ms: int, sequence: int) -> None:
    """Draw the stamp for ``wall_ms`` and ``sequence`` into ``image`` in place.

    ``image`` is an H×W×3 BGR (or any 3-channel, or a 2-D grey) uint8 array;
    black and white are the same in every channel order. Raises
    :class:`ValueError` when the picture is too small to hold the stamp.
    """
    height, width = image.shape[:2]
    cell = cell_size(width)
    region_width, region_height = stamp_region(width)
    if region_width > width or region_height > height:
        raise ValueError(
            f"a {width}x{height} picture cannot hold a {region_width}x{region_height} stamp"
        )
    word = _encode(wall_ms, sequence).to_bytes(_STAMP_BYTES, "big")
    bits = np.unpackbits(np.frombuffer(word, np.uint8)).reshape(STAMP_ROWS, STAMP_COLUMNS)
    border = BORDER_CELLS * cell
    image[:region_height, :region_width] = 255
    grid = image[border : border + STAMP_ROWS * cell, border : border + STAMP_COLUMNS * cell]
    # Splitting both axes into (cells, pixels) is a view of the picture;
    # broadcasting one value per cell over it is far cheaper than building the
    # enlarged grid with np.repeat and copying that in.
    channels = image.shape[2:]
    cells = grid.reshape(STAMP_ROWS, cell, STAMP_COLUMNS, cell, *channels)
    per_cell = (STAMP_ROWS, 1, STAMP_COLUMNS, 1, *(1 for _ in channels))
    cells[...] = (bits * np.uint8(255)).reshape(per_cell)


def read_stamp(luma: Luma) -> Stamp | None:
    """The stamp in a 2-D uint8 luma (Y) plane, or ``None`` when there is none.

    Each cell counts by the mean of its inner half (a quarter-cell in from
    every edge), where codec ringing and the blur between cells do not reach.
    ``None`` means: the picture is too small, a cell is neither clearly black
    nor clearly white, or the check does not match. The plane may be a
    strided view (rows cut back from a decoder's padded line size).
    """
    if luma.ndim != 2:
        raise ValueError(f"expected a 2-D luma plane, got shape {luma.shape}")
    height, width = luma.shape
    cell = cell_size(width)
    region_width, region_height = stamp_region(width)
    if region_width > width or region_height > height:
        return None
    border = BORDER_CELLS * cell
    quarter = cell // 4
    grid = luma[border : border + STAMP_ROWS * cell, border : border + STAMP_COLUMNS * cell]
    centres = grid.reshape(STAMP_ROWS, cell, STAMP_COLUMNS, cell)[
        :, quarter : cell - quarter, :, quarter : cell - quarter
    ]
    means: npt.NDArray[np.floating[Any]] = centres.mean(axis=(1, 3), dtype=np.float32).ravel()
    if bool((np.abs(means - THRESHOLD) < MARGIN).any()):
        return None
    word = int.from_bytes(np.packbits(means >= THRESHOLD).tobytes(), "big")
    data, check = word >> CHECK_BITS, word & 0xFF
    if _crc8(data.to_bytes(6, "big")) != check:
        return None
    return Stamp(wall_ms=data >> SEQUENCE_BITS, sequence=data & ((1 << SEQUENCE_BITS) - 1))


def latency_ms(stamp_wall_ms: int, now_wall_ms: int) -> int:
    """Milliseconds from a stamp's time to ``now_wall_ms``, across the 2**32 wrap.

    The stamp keeps only the low 32 bits of the wall clock (they wrap every
    ~49.7 days), so the difference is taken mod 2**32 and read as signed: a
    stamp slightly in the future (clocks of two processes, a wall-clock step)
    gives a small negative number, not four billion.
    """
    modulus = 1 << WALL_BITS
    half = modulus >> 1
    return (now_wall_ms - stamp_wall_ms + half) % modulus - half
