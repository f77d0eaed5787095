"""One product of a benchmark (a column of Table 4), as frozen data."""

from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Mapping, Optional, Tuple


def _frozen_map(value) -> Mapping:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True)
class Product:
    """Declaration of a product (a column of Table 4).

    Args:
        key (str): Product key, used in metric names (``<key>/mIoU``).
        folder (str, optional): Folder under ``data_root``; ``key`` if None.
            Ignored when ``parts`` is given.
        categories (Sequence[str]): Category folders in the official order.
            With ``parts``: the categories inside each part folder.
        parts (Sequence[str], optional): Folders that together form the
            product, each holding ``categories`` (DAGM: ``Class1`` ..
            ``Class10`` with ``bad``). Each part is one benchmark category.
        display (str, optional): Readable product name (Table 4 header).
        display_names (dict, optional): category (or part) -> readable name.
        counts (dict, optional): category (or part) -> Table-1 image count;
            None where the paper gives no per-category number.
        total (int, optional): Table-1 image count of the product; the sum of
            ``counts`` if None.
        mask_mode (str): ``'binary'`` (fg = resized mask > threshold) or
            ``'index'`` (fg of category c = mask == index_map[c]).
        mask_threshold (int): Binary threshold on the resized 8-bit mask
            (30 in the official GFDS loader).
        index_map (dict, optional): category -> mask value for ``'index'``.
        source (str): Where the images come from.
        licence (str): Licence of the source.
        quirks (Sequence[str]): Things a user preparing the data should know.
        aliases (Sequence[str]): Other names accepted for ``key``.
        benchmark (str): Benchmark the product belongs to (``'gfds'`` or
            another name, e.g. ``'real_defects'``).
        include_good (bool): Default for adding ``good`` images as
            defect-free queries.

    Sequences are stored as tuples and dicts as read-only mappings. Fields
    can also be read as ``product['categories']`` (the form of the dict
    entries of earlier versions).
    """

    key: str
    folder: Optional[str] = None
    categories: Tuple[str, ...] = ()
    parts: Optional[Tuple[str, ...]] = None
    display: Optional[str] = None
    display_names: Mapping[str, str] = field(default_factory=dict)
    counts: Mapping[str, Optional[int]] = field(default_factory=dict)
    total: Optional[int] = None
    mask_mode: str = 'binary'
    mask_threshold: int = 30
    index_map: Mapping[str, int] = field(default_factory=dict)
    source: str = ''
    licence: str = ''
    quirks: Tuple[str, ...] = ()
    aliases: Tuple[str, ...] = ()
    benchmark: str = 'gfds'
    include_good: bool = False

    def __post_init__(self):
        key = self.key
        if not self.categories:
            raise ValueError(f'product {key!r}: categories is empty')
        if self.mask_mode not in ('binary', 'index'):
            raise ValueError(
                f'product {key!r}: mask_mode must be "binary" '
                f'or "index", got {self.mask_mode!r}'
            )
        if self.parts is not None and len(self.categories) != 1:
            # Each part is one benchmark category, as DAGM's Class<k>/bad.
            raise ValueError(
                f'product {key!r}: a product with parts has '
                'one category per part folder'
            )
        parts = tuple(self.parts) if self.parts is not None else None
        units = parts if parts is not None else tuple(self.categories)
        counts = dict(self.counts or {})
        unknown = set(counts) - set(units)
        if unknown:
            raise ValueError(
                f'product {key!r}: counts for undeclared categories {sorted(unknown)}'
            )
        total = self.total
        if total is None and all(counts.get(u) is not None for u in units):
            total = sum(counts[u] for u in units)
        set_ = object.__setattr__  # normalise once, in the constructor
        set_(self, 'folder', self.folder or key)
        set_(self, 'categories', tuple(self.categories))
        set_(self, 'parts', parts)
        set_(self, 'display', self.display or key)
        set_(self, 'display_names', _frozen_map(self.display_names))
        set_(self, 'counts', _frozen_map({u: counts.get(u) for u in units}))
        set_(self, 'total', total)
        set_(self, 'mask_threshold', int(self.mask_threshold))
        set_(self, 'index_map', _frozen_map(self.index_map))
        set_(self, 'quirks', tuple(self.quirks))
        set_(self, 'aliases', tuple(self.aliases))
        set_(self, 'include_good', bool(self.include_good))

    @property
    def units(self) -> Tuple[str, ...]:
        """Benchmark categories: the categories, or the parts (DAGM)."""
        return self.parts or self.categories

    def __getitem__(self, name: str):
        if name not in {f.name for f in fields(self)}:
            raise KeyError(name)
        return getattr(self, name)
