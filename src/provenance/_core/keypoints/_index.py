"""Stored descriptors of many images and the votes a query gets (:class:`KeypointIndex`)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from provenance._core.keypoints._libs import load_faiss
from provenance._core.keypoints._record import DESCRIPTOR_BYTES, F32, U8, LocalFeatures

VOTE_BITS = 28
"""A stored descriptor this near a query descriptor votes for its image. At 40 bits
the corners of a page's header and text voted for packshots on white, and a
screenshot's own asset ranked 6th-11th among 20k assets in 5 of 13 queries; at 28
bits it ranked 0th-7th in all 13 (``benchmarks/robustness.py``)."""

NEIGHBOURS = 8
"""Stored descriptors looked up per query descriptor (those within :data:`VOTE_BITS`
vote). 16 or 32 found no more copies among 1M planted assets (a banner's own asset got
the same 0-2 votes there with 32 as with 8) and ranked the true asset first less often
(``benchmarks/robustness.py --partial-rank-only --rank-neighbours``, docs/search.md)."""

MIN_VOTES = 2
"""An image needs this many agreeing votes to be a candidate. Was 3: among 1M planted
assets a banner's own asset got fewer than 3 agreeing votes in 11 of 177 queries
(7-36 among the 304 real assets alone for 8 of them), and 2 put 4 back in the best 8
(banner confirmed recall 0.90 to 0.93, screenshots 0.949 to 0.955:
``--partial-rank-only --rank-min-votes``). A candidate is still located and judged by
every geometric rule, and at most 8 are located whatever the threshold."""

TURN_BINS = 16
"""Bins of a voted image's turn histogram (22.5 degrees each)."""

TURN_WINDOW = 3
"""Adjacent turn bins an image scores (67.5 degrees: a copy's keypoints turn alike,
within ORB's orientation noise)."""

LIST_CAP = 4.0
"""An inverted list keeps at most this many times the mean list length."""

INDEXED_FEATURES = 96
"""Keypoints per stored image that vote (the strongest); all are used to locate it.
A copy still gets tens of votes, against a few for unrelated images, and the
index needs 96 x 40 bytes per asset in memory instead of 256 x 40."""

FLAT_LIMIT = 50_000
"""Up to this many stored descriptors (about 200 assets) the index is exact
(brute-force Hamming); beyond it an inverted file (a brute-force scan of 0.5M
descriptors took 3.6 s per query here)."""

_MAX_PER_ROW = 1024
# A stored descriptor's faiss id: key << 17 | has-angle << 16 | angle step << 10 | number.
# The orientation travels with the id, so the votes can check it without a lookup.
_NUMBER_BITS = 10
_ANGLE_STEPS = 64  # 5.6 degrees a step
_ANGLE_SHIFT = _NUMBER_BITS
_KNOWN_SHIFT = 16
_KEY_SHIFT = 17


class KeypointIndex:
    """Stored descriptors of many images; votes for the images a query may contain.

    Each stored image has an integer key (the inventory's row key). Below
    :data:`FLAT_LIMIT` descriptors the search is exact (faiss
    ``IndexBinaryFlat``); from it, the index is rebuilt as an inverted file
    (``IndexBinaryIVF``) whose lists are centred on stored descriptors sampled
    evenly (no k-means: binary k-means over millions of rows costs minutes), with
    an HNSW graph over those centres as the coarse quantizer, probing
    ``nprobe`` lists per query descriptor.

    Args:
        nprobe: Inverted lists probed per query descriptor (inverted file only).
        per_image: Descriptors stored per image (its strongest keypoints).
    """

    def __init__(self, *, nprobe: int = 8, per_image: int = INDEXED_FEATURES) -> None:
        self._nprobe = nprobe
        self._per_image = min(per_image, _MAX_PER_ROW)
        self._keys: list[int] = []
        self._chunks: list[U8] = []  # descriptors not yet in a built index
        self._ids: list[npt.NDArray[np.int64]] = []
        self._index: Any = None
        self._quantizer: Any = None  # the inverted file's coarse quantizer, kept alive
        self._count = 0
        self.dropped = 0
        """Descriptors left out of hub lists (see :meth:`_cap_lists`)."""

    def __len__(self) -> int:
        """The number of stored images."""
        return len(self._keys)

    @property
    def descriptors(self) -> int:
        """The number of stored descriptors."""
        return self._count

    @property
    def outgrown(self) -> bool:
        """Whether the inverted file's lists are 4x longer than it was built for.

        Lists are sized when the inverted file is built (about 256 descriptors
        each); an index that grew fourfold since should be rebuilt from scratch
        (:meth:`provenance.inventory.Inventory.keypoint_index` does).
        """
        index = self._index
        if index is None or not hasattr(index, "nlist"):
            return False
        return self._count > 4 * 256 * int(index.nlist)

    def add(self, key: int, features: LocalFeatures) -> None:
        """Store one image's descriptors under ``key`` (a non-negative integer < 2**46)."""
        self.add_descriptors(key, features.descriptors, features.angles)

    def add_descriptors(self, key: int, descriptors: U8, angles: F32 | None = None) -> None:
        """:meth:`add` from the ``(N, 32)`` descriptors and their orientations alone.

        ``descriptors`` strongest first, as stored; ``angles`` in degrees (None for
        ``orb1`` records, whose votes then count whole).
        """
        count = min(int(descriptors.shape[0]), self._per_image)
        self._keys.append(key)
        if count == 0:
            return
        self._chunks.append(np.array(descriptors[:count]))  # a copy: not the record's buffer
        turns = None if angles is None else angles[:count]
        self._ids.append(
            descriptor_ids(np.full(count, key, np.int64), np.arange(count, dtype=np.int64), turns)
        )
        self._count += count

    def add_many(self, items: Iterable[tuple[int, LocalFeatures]]) -> None:
        """:meth:`add` for each ``(key, features)``."""
        for key, features in items:
            self.add(key, features)

    def _built(self) -> Any:
        faiss = load_faiss()
        if self._index is not None and not self._chunks:
            return self._index
        data = (
            np.concatenate(self._chunks)
            if self._chunks
            else np.zeros((0, DESCRIPTOR_BYTES), np.uint8)
        )
        ids = np.concatenate(self._ids) if self._ids else np.zeros(0, np.int64)
        self._chunks, self._ids = [], []
        total = self._count
        flat = self._index is None or isinstance(self._index, faiss.IndexBinaryIDMap)
        if flat and total > FLAT_LIMIT:
            # Rebuild as an inverted file over everything stored so far.
            old = self._index
            if old is not None:
                stored = faiss.vector_to_array(faiss.downcast_IndexBinary(old.index).xb)
                old_ids = faiss.vector_to_array(old.id_map)
                data = np.concatenate([stored.reshape(-1, DESCRIPTOR_BYTES), data])
                ids = np.concatenate([old_ids, ids])
            self._index, self._quantizer = _inverted(data, self._nprobe)
        elif self._index is None:
            self._index = faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(DESCRIPTOR_BYTES * 8))
        if len(data):
            self._index.add_with_ids(np.ascontiguousarray(data), ids)
            if not isinstance(self._index, faiss.IndexBinaryIDMap):
                self._cap_lists()
        return self._index

    def _cap_lists(self) -> None:
        """Truncate hub lists to :data:`LIST_CAP` times the mean list length.

        ORB descriptors are far from uniform: with centres sampled from the data,
        a few lists collect most of them (a 10x imbalance over 0.5M descriptors
        here), and every query descriptor near a hub scans it. Like a text
        index's stop words, a hub's descriptors say little about which image they
        come from; the entries past the cap (the most recently added) are dropped
        from the votes (never from the stored features that locate a candidate).
        """
        faiss = load_faiss()
        index = self._index
        lists = faiss.downcast_InvertedLists(index.invlists)
        cap = max(64, int(LIST_CAP * index.ntotal / index.nlist))
        total = 0
        for list_no in range(index.nlist):
            size = lists.list_size(list_no)
            if size > cap:
                lists.resize(list_no, cap)
                self.dropped += size - cap
                size = cap
            total += size
        index.ntotal = total

    def candidates(
        self,
        query: LocalFeatures,
        *,
        k: int = 8,
        min_votes: int = MIN_VOTES,
        neighbours: int = NEIGHBOURS,
    ) -> list[tuple[int, int]]:
        """Stored images with the most query descriptors near one of theirs, turned alike.

        Every query descriptor looks up its ``neighbours`` nearest stored
        descriptors; those within :data:`VOTE_BITS` vote for their image (one
        vote per query descriptor and image). Images are ranked by
        :func:`rank_votes`: a vote counts less when its query descriptor hit many
        images, and only the votes whose keypoints turned by about the same
        angle count.

        Args:
            query: :func:`query_features` of the image being checked.
            k: At most this many images.
            min_votes: Leave out images with fewer agreeing votes.
            neighbours: Stored descriptors looked up per query descriptor.

        Returns:
            ``(key, votes)`` pairs, best first; ``votes`` counts the query
            descriptors that voted for the image and agree on its turn.
        """
        if self._count == 0 or len(query) == 0:
            return []
        index = self._built()
        distances, labels = index.search(np.ascontiguousarray(query.descriptors), neighbours)
        return rank_votes(query.angles, distances, labels, k=k, min_votes=min_votes)

    # --- stored form (what inventory caches on disk; pure: arrays in, arrays out) ------

    def to_arrays(self) -> tuple[dict[str, npt.NDArray[Any]], dict[str, Any]]:
        """The index as arrays and a few numbers, for :meth:`from_arrays`.

        Descriptors not yet in the faiss index are folded in first. The
        inverted file's lists are returned as they are (capped, in order), so
        the index read back votes exactly as this one; the coarse quantizer is
        faiss's serialised HNSW graph (about 1% of the lists' size).

        Returns:
            ``arrays``: ``keys`` (stored image keys), ``codes`` and ``ids`` (the
            descriptors and their ids, list by list), ``list_offsets`` and
            ``quantizer`` for an inverted file; ``meta``: ``layout`` (``empty``,
            ``flat`` or ``inverted``), ``count``, ``dropped``, ``nprobe``,
            ``per_image``.
        """
        faiss = load_faiss()
        index = self._built() if self._chunks or self._index is not None else None
        arrays: dict[str, npt.NDArray[Any]] = {"keys": np.asarray(self._keys, np.int64)}
        layout = "empty"
        if isinstance(index, faiss.IndexBinaryIDMap):
            layout = "flat"
            stored = faiss.vector_to_array(faiss.downcast_IndexBinary(index.index).xb)
            arrays["codes"] = stored.reshape(-1, DESCRIPTOR_BYTES)
            arrays["ids"] = faiss.vector_to_array(index.id_map).astype(np.int64)
        elif index is not None:
            layout = "inverted"
            lists = faiss.downcast_InvertedLists(index.invlists)
            sizes = np.array([lists.list_size(i) for i in range(index.nlist)], np.int64)
            offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
            codes = np.empty((int(offsets[-1]), DESCRIPTOR_BYTES), np.uint8)
            ids = np.empty(int(offsets[-1]), np.int64)
            for i in np.flatnonzero(sizes):
                a, n = int(offsets[i]), int(sizes[i])
                codes[a : a + n] = faiss.rev_swig_ptr(lists.get_codes(int(i)), n * 32).reshape(
                    n, DESCRIPTOR_BYTES
                )
                ids[a : a + n] = faiss.rev_swig_ptr(lists.get_ids(int(i)), n)
            arrays.update(codes=codes, ids=ids, list_offsets=offsets)
            arrays["quantizer"] = faiss.serialize_index_binary(index.quantizer)
        meta = {
            "layout": layout,
            "count": self._count,
            "dropped": self.dropped,
            "nprobe": self._nprobe,
            "per_image": self._per_image,
        }
        return arrays, meta

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, npt.NDArray[Any]], meta: dict[str, Any]
    ) -> KeypointIndex:
        """The index :meth:`to_arrays` described (arrays may be memory-mapped).

        The descriptors are copied once, straight from ``arrays`` into the
        faiss lists; nothing is searched or assigned again.

        Raises:
            ValueError: The arrays or numbers do not describe an index.
        """
        faiss = load_faiss()
        try:
            made = cls(nprobe=int(meta["nprobe"]), per_image=int(meta["per_image"]))
            layout, made._count = str(meta["layout"]), int(meta["count"])
            made.dropped = int(meta["dropped"])
            made._keys = [int(k) for k in np.asarray(arrays["keys"], np.int64)]
            if layout == "empty":
                return made
            codes, ids = arrays["codes"], arrays["ids"]
            if (
                codes.ndim != 2
                or codes.shape[1] != DESCRIPTOR_BYTES
                or ids.shape != codes.shape[:1]
            ):
                raise ValueError("descriptor arrays of inconsistent shapes")
            if layout == "flat":
                made._index = faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(DESCRIPTOR_BYTES * 8))
                made._index.add_with_ids(np.ascontiguousarray(codes), np.ascontiguousarray(ids))
                return made
            if layout != "inverted":
                raise ValueError(f"unknown layout {layout!r}")
            quantizer = faiss.deserialize_index_binary(np.ascontiguousarray(arrays["quantizer"]))
            offsets = np.asarray(arrays["list_offsets"], np.int64)
            steps = np.diff(offsets)
            if (
                quantizer.d != DESCRIPTOR_BYTES * 8
                or offsets.shape != (quantizer.ntotal + 1,)
                or offsets[0] != 0
                or offsets[-1] != len(ids)
                or (steps < 0).any()
            ):
                raise ValueError("list offsets do not match the lists")
            index = faiss.IndexBinaryIVF(quantizer, DESCRIPTOR_BYTES * 8, quantizer.ntotal)
            index.nprobe, index.is_trained = made._nprobe, True
            for i in np.flatnonzero(steps):
                a, b = int(offsets[i]), int(offsets[i + 1])
                part_ids = np.ascontiguousarray(ids[a:b])
                part_codes = np.ascontiguousarray(codes[a:b])
                index.invlists.add_entries(
                    int(i), b - a, faiss.swig_ptr(part_ids), faiss.swig_ptr(part_codes)
                )
            index.ntotal = len(ids)
            made._index, made._quantizer = index, quantizer
            return made
        except (KeyError, TypeError, RuntimeError) as exc:  # faiss raises RuntimeError
            raise ValueError(f"not a stored keypoint index: {exc}") from exc


def rank_votes(
    angles: F32 | None,
    distances: npt.NDArray[np.int32],
    labels: npt.NDArray[np.int64],
    *,
    k: int,
    min_votes: int,
) -> list[tuple[int, int]]:
    """The best ``k`` images by votes: idf-weighted, then the largest agreeing turn.

    Two steps make a copy stand out among 100k-1M images, where a page's text,
    corners and flat edges are near some descriptor of thousands of them:

    * **idf**: a query descriptor with stored neighbours in ``n`` images gives
      each ``1 / n`` of a vote (a descriptor that hits every image it looks at
      says nothing about which one is shown);
    * **orientation**: each vote's turn (query keypoint's orientation minus the
      stored one's) goes into a histogram of :data:`TURN_BINS` bins per image,
      and an image scores the best :data:`TURN_WINDOW` adjacent bins. A copy's
      keypoints all turned by the copy's rotation; chance neighbours turned at
      random, so about ``TURN_WINDOW / TURN_BINS`` of them agree. Votes of an
      image stored without orientations count whole.

    Args:
        angles: The query keypoints' orientations (degrees), or None.
        distances: ``(Q, n)`` Hamming distances of each query descriptor's
            neighbours (faiss ``search``).
        labels: Their ids (:func:`descriptor_ids`), -1 for none.
        k: At most this many images.
        min_votes: Leave out images with fewer agreeing votes.

    Returns:
        ``(key, votes)`` pairs, best first (ties: the smaller key).
    """
    near = (labels >= 0) & (distances <= VOTE_BITS)
    if not near.any():
        return []
    who = np.nonzero(near)[0]
    ids = labels[near]
    dist = distances[near]
    keys = ids >> _KEY_SHIFT
    # One vote per query descriptor and image: its nearest stored descriptor.
    order = np.lexsort((dist, who, keys))
    keys, who, ids = keys[order], who[order], ids[order]
    first = np.ones(len(keys), bool)
    first[1:] = (keys[1:] != keys[:-1]) | (who[1:] != who[:-1])
    keys, who, ids = keys[first], who[first], ids[first]
    weight = 1.0 / np.bincount(who)[who]
    images, image = np.unique(keys, return_inverse=True)
    known = ((ids >> _KNOWN_SHIFT) & 1).astype(bool) & (angles is not None)
    turned = np.zeros(len(ids), np.int64)
    if angles is not None and known.any():
        stored = (ids >> _ANGLE_SHIFT) & (_ANGLE_STEPS - 1)
        query_steps = np.round(angles[who] * (_ANGLE_STEPS / 360.0)).astype(np.int64)
        turned = ((query_steps - stored) % _ANGLE_STEPS) * TURN_BINS // _ANGLE_STEPS
    score, votes = _agreeing_votes(image, len(images), turned, known, weight)
    order = np.lexsort((images, -score))[:k]
    return [(int(images[i]), int(votes[i])) for i in order if votes[i] >= min_votes]


def _agreeing_votes(
    image: npt.NDArray[np.intp],
    images: int,
    turned: npt.NDArray[np.int64],
    known: npt.NDArray[np.bool_],
    weight: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Per image: the weight and count of its votes in its best window of turn bins."""
    cells = image * TURN_BINS + turned
    weights = np.bincount(cells[known], weight[known], images * TURN_BINS)
    counts = np.bincount(cells[known], minlength=images * TURN_BINS).astype(np.float64)
    score = np.zeros(images)
    votes = np.zeros(images, np.int64)
    for table, out in ((weights, score), (counts, votes)):
        grid = table.reshape(images, TURN_BINS)
        window = sum(np.roll(grid, shift, axis=1) for shift in range(TURN_WINDOW))
        out[:] = np.max(window, axis=1)
    # Images (or a query) without orientations: every vote counts.
    unknown = ~known
    score += np.bincount(image[unknown], weight[unknown], images)
    votes += np.bincount(image[unknown], minlength=images)
    return score, votes


def descriptor_ids(
    keys: npt.NDArray[np.int64], numbers: npt.NDArray[np.int64], angles: F32 | None
) -> npt.NDArray[np.int64]:
    """Faiss ids of stored descriptors: image key, orientation (when known), number."""
    ids = (keys.astype(np.int64) << _KEY_SHIFT) | numbers.astype(np.int64)
    if angles is not None:
        steps = np.round(angles * (_ANGLE_STEPS / 360.0)).astype(np.int64) % _ANGLE_STEPS
        ids |= (1 << _KNOWN_SHIFT) | (steps << _ANGLE_SHIFT)
    return ids


def image_keys(ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The image keys of faiss ids (:func:`descriptor_ids`)."""
    return ids >> _KEY_SHIFT


def _inverted(sample_from: U8, nprobe: int) -> tuple[Any, Any]:
    """An empty inverted file whose list centres are evenly sampled rows of ``sample_from``."""
    faiss = load_faiss()
    # About 256 descriptors per list: the scan and the coarse search stay balanced.
    lists = int(min(2**20, max(1_024, 2 ** round(math.log2(max(1, len(sample_from)) / 256)))))
    step = max(1, len(sample_from) // lists)
    centres = np.ascontiguousarray(sample_from[::step][:lists])
    quantizer = faiss.IndexBinaryHNSW(DESCRIPTOR_BYTES * 8, 16)
    quantizer.hnsw.efSearch = 16  # 16 vs 32: 25% less CPU per query, same votes here
    quantizer.add(centres)
    index = faiss.IndexBinaryIVF(quantizer, DESCRIPTOR_BYTES * 8, len(centres))
    index.nprobe = nprobe
    index.is_trained = True
    return index, quantizer
