"""Size arguments."""

from typing import Optional, Sequence, Tuple, Union

SizeType = Union[int, Sequence[int], None]


def to_hw(size: SizeType) -> Optional[Tuple[int, int]]:
    """``None`` | ``s`` | ``(h, w)`` -> ``None`` | ``(h, w)`` ints."""
    if size is None:
        return None
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)
