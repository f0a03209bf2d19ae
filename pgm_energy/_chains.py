"""Chain layout and random streams, shared by the samplers, tempering, AIS and the compiled
learning epoch.

* Streams: one xoshiro256+ state per chain, a (4, padded) uint64 array, column ``c`` chain
  ``c``; seeded from the user's ``rng`` through ``numpy.random.SeedSequence``, so the draws
  depend on the seed only, never on the thread count.
* Layout: chains are padded to a multiple of 8 lanes; memory is 64-byte aligned, and per-thread
  blocks (slabs) start on their own 4096-byte page, so threads never share a cache line.
* Byte codec: the sparse kernel stores a unit value in {-1, 0, 1} as one byte, the top byte of
  the value as a double.
* Initial state: uniform random unit values of every chain.
* Size check: the memory a number of chains needs, refused up front when the machine cannot
  hold it.
"""
from __future__ import annotations

import contextlib
import functools
import os
import threading

import numpy as np

from .units import open_uniforms

#: Bytes per chain slot while a sampler is set up (random bits, their float64 values and the
#: engine's copy) and per chain stream (4 uint64 words).
SETUP_BYTES_PER_SLOT = 24
STREAM_BYTES = 32
#: Fewer chains than this: the kernels' one-chain-at-a-time path.
SCALAR_BELOW = 8


def padded(n_chains: int) -> int:
    """``n_chains`` rounded up to whole groups of 8 lanes."""
    return -(-n_chains // 8) * 8


def chain_block(n_chains: int, n_threads: int) -> int:
    """Chains per kernel block: one block per thread (longer vector loops run faster), a
    multiple of 8 (whole groups of 8 lanes, split evenly); fewer than 8 chains: one block of
    exactly ``n_chains``, which the kernel runs one chain at a time (a vector group would
    mostly compute padding). Each chain's numbers do not depend on the blocking."""
    if n_chains < SCALAR_BELOW:
        return n_chains
    groups = -(-n_chains // 8)
    return 8 * -(-groups // max(1, min(n_threads, groups)))


def aligned_zeros(shape, dtype=np.float64, alignment: int = 64) -> np.ndarray:
    """C-contiguous zeros whose data pointer is a multiple of ``alignment`` bytes."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape))
    buf = np.zeros(size + alignment // dtype.itemsize, dtype)
    skip = (-buf.ctypes.data % alignment) // dtype.itemsize
    return buf[skip:skip + size].reshape(shape)


def chain_streams(rng, n_chains: int) -> np.ndarray:
    """Seed one xoshiro256+ stream per chain: a (4, >= n_chains) uint64 state array.

    Column ``c`` is chain ``c``'s state; columns are padded to a multiple of 8 and the array
    is 64-byte aligned, so blocks of 8k chains never share a cache line.
    """
    gen = np.random.default_rng(rng)
    seq = np.random.SeedSequence(gen.integers(0, 2**63, size=4))
    return padded_streams(seq.generate_state(4 * n_chains, np.uint64).reshape(n_chains, 4).T)


def random_state(graph, rng, n_chains: int) -> np.ndarray:
    """Random slot values ``(n_chains, n_units)`` of a flat graph's units: one bit per slot
    from ``rng`` (a Generator), then, group by group, the values of categorical units (their
    one-hot slots replace the bits) and of continuous ones (a draw from each unit's density
    at zero field, e.g. ``N(0, sigma^2)``, replaces the bit)."""
    flat = graph.from_bits(rng.integers(0, 2, size=(n_chains, graph.n_units)))
    for g, unit in graph.units.items():
        if unit.continuous:
            flat[:, graph.slots(g)] = unit.quantile(np.zeros(unit.n),
                                                    open_uniforms(rng, (n_chains, unit.n)))
        elif unit.width != unit.n:
            flat[:, graph.slots(g)] = unit.encode(rng.integers(0, unit.k, size=(n_chains, unit.n)))
    return flat


def padded_streams(streams: np.ndarray) -> np.ndarray:
    """The (4, n_chains) stream states ``streams`` in a fresh aligned (4, padded) array; the
    padding lanes (scratch for the kernels' groups of 8) get valid states of their own."""
    n_chains = streams.shape[1]
    out = aligned_zeros((4, padded(n_chains)), np.uint64)
    out[:, :n_chains] = streams
    out[0, ~out.any(axis=0)] = 1        # xoshiro's state must not be all zero
    return out


def slabs(shape, dtype=np.float64):
    """Zeros of ``shape`` = (n_blocks, ...) whose blocks each start on their own 4096-byte
    page: ``(buffer, view)``, the buffer (n_blocks, page-rounded block size) C-contiguous,
    the view of ``shape`` on it (C-contiguous within each block)."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape[1:]))
    per = -(-size * dtype.itemsize // 4096) * 4096 // dtype.itemsize
    buf = aligned_zeros((shape[0], per), dtype, alignment=4096)
    inner = np.zeros(shape[1:], dtype).strides
    return buf, np.lib.stride_tricks.as_strided(buf, shape, (per * dtype.itemsize, *inner))


def state_bytes(values: np.ndarray) -> np.ndarray:
    """The sparse kernel's state bytes of unit values in {-1, 0, 1}: the top byte of each
    value as a double (0x3F for +1, 0xBF for -1, 0 for 0). Widening a byte back,
    ``asdouble(byte << 56) = value * 2**-15``, is exact and cheap."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    return (values.view(np.uint64) >> np.uint64(56)).astype(np.uint8)


#: The value of each state byte (the kernel's pe__state_value table).
_BYTE_VALUES = np.zeros(256)
_BYTE_VALUES[state_bytes(np.array([-1.0, 1.0]))] = [-1.0, 1.0]


def state_values(state: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Unit values (float64) of the kernel's state bytes, into ``out`` if given; the inverse
    of :func:`state_bytes`."""
    return np.take(_BYTE_VALUES, state, out=out, mode="clip")


def available_memory() -> int:
    """Bytes this process may use: the physical memory, or less under an address-space
    limit (``ulimit -v``)."""
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        import resource
    except ImportError:  # pragma: no cover (not on Unix)
        return total
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return total if soft == resource.RLIM_INFINITY else min(total, soft)


def check_chain_memory(n_chains: int, n_slots: int, name: str = "n_chains") -> None:
    """Refuse, before allocating, chains that need more memory than the process may use:
    ``n_chains * (SETUP_BYTES_PER_SLOT * n_slots + STREAM_BYTES)`` bytes."""
    needed = n_chains * (SETUP_BYTES_PER_SLOT * n_slots + STREAM_BYTES)
    available = available_memory()
    if needed > available:
        raise ValueError(
            f"{name}={n_chains} needs about {_gigabytes(needed)} of memory for the chains "
            f"({n_slots} slots each, {SETUP_BYTES_PER_SLOT} bytes per slot while setting up, "
            f"plus {STREAM_BYTES} bytes of random stream), but only {_gigabytes(available)} "
            "is available; use fewer chains")


def _gigabytes(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:.3g} GiB"


@functools.lru_cache(maxsize=1)
def _blas_libraries():
    """The loaded BLAS libraries' ``threadpoolctl`` controllers (scanning the loaded
    libraries is slow: once per process)."""
    import threadpoolctl

    return tuple(threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers)


class _OneBlasThread:
    """Who holds BLAS to one thread: the BLAS thread count is one setting for the whole
    process, so the first holder saves and sets it and the last one restores it."""

    lock = threading.Lock()
    holders = 0
    saved: list = []


@contextlib.contextmanager
def one_blas_thread():
    """Hold BLAS to one thread inside: in compiled loops whose own threads split the work
    (idle BLAS workers would spin on the same cores), and where a product's rounding must not
    depend on the BLAS thread count. The count is restored when the last of the threads that
    hold it at once leaves (so samplers in several threads leave BLAS as they found it)."""
    libraries = _blas_libraries()
    with _OneBlasThread.lock:
        if _OneBlasThread.holders == 0:
            _OneBlasThread.saved = [lib.num_threads for lib in libraries]
            for lib in libraries:
                lib.set_num_threads(1)
        _OneBlasThread.holders += 1
    try:
        yield
    finally:
        with _OneBlasThread.lock:
            _OneBlasThread.holders -= 1
            if _OneBlasThread.holders == 0:
                for lib, n in zip(libraries, _OneBlasThread.saved):
                    lib.set_num_threads(n)
