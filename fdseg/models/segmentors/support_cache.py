"""Support-set caching shared by the few-shot segmentors."""

from collections import OrderedDict
from typing import Any, List, Sequence


class SupportCacheMixin:
    """Encode each support set once; reuse it for every query against it.

    Support states (prototypes, SAM2 memories, ...) are kept in an LRU keyed
    by the episode's ``support_key`` (support files and size, set by
    ``PackEpisodeInputs``; None when augmentation may have changed them),
    and one state can be pinned for a stream of queries. The host class
    provides ``encode_support(imgs, masks, labels)``.
    """

    def _init_support_cache(self, size: int) -> None:
        self.support_cache_size = size
        self._support_cache: 'OrderedDict[tuple, Any]' = OrderedDict()
        self._pinned = None

    def pin_support_state(self, state: Any) -> None:
        """Pin a support state encoded earlier, without encoding anything.

        Queries are then matched against it as after ``set_support`` (e.g. a
        defect bank's merged prototypes or memories).
        """
        self._pinned = state

    def clear_support(self) -> None:
        """Forget the pinned support set and the cache."""
        self._pinned = None
        self._support_cache.clear()

    def _support_states(self, data_samples: Sequence, use_cache: bool = True) -> List:
        """One support state per data sample (pinned, cached or new)."""
        states = []
        for s in data_samples:
            if self._pinned is not None:
                states.append(self._pinned)
                continue
            key = s.metainfo.get('support_key') if use_cache else None
            if key is not None and key in self._support_cache:
                self._support_cache.move_to_end(key)
                states.append(self._support_cache[key])
                continue
            state = self.encode_support(
                s.support_imgs, s.support_masks, s.support_labels_or_default()
            )
            if key is not None and self.support_cache_size > 0:
                self._support_cache[key] = state
                while len(self._support_cache) > self.support_cache_size:
                    self._support_cache.popitem(last=False)
            states.append(state)
        return states
