"""Data-parallel training over MPI: what ``TrainStep(..., comm=)`` and
``fit(..., comm=)`` add to the one-process step.

Every rank holds the whole model and is handed the same global batch; rank r
computes the gradients of its contiguous slice of it (slices as equal as
possible, an empty one contributes zeros), weighted by n_r / N for a "mean"
loss. All gradients live in ONE contiguous buffer (``p.grad`` are views of
it), followed by the weighted loss, the global batch size and an ok flag;
one ``Iallgather`` per step brings every rank's buffer to every rank as a
(P, n) array, and each rank adds the rows in rank order. Elementwise IEEE
additions in a fixed order give the same bits on every rank and every run,
which MPI's ``Allreduce`` does not promise. Then every rank runs the same
optimizer update, so the parameters stay bitwise identical.

No collective waits forever: a rank that does not arrive within
``FUSEDPROP_COMM_TIMEOUT`` seconds (default 600; 0 waits forever) makes the
waiting ranks call ``MPI_Abort``, which ends the whole job. Importing this
module does not import mpi4py; it is imported when a comm is given.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import traceback

import numpy as np

DEFAULT_TIMEOUT = 600.0
_SPIN, _NAP = 2e-3, 5e-5  # seconds: busy-wait this long, then test every _NAP
_LAST_WORDS = 0.5  # seconds between the message and MPI_Abort
_TAIL = 3  # float64 after the gradients: loss, global batch size, ok flag


def check_comm(comm, fn: str):
    """comm if it is a usable mpi4py intracommunicator, else TypeError/ValueError."""
    try:
        from mpi4py import MPI
    except ImportError:
        raise TypeError(f"{fn}: comm needs mpi4py (pip install 'fusedprop[mpi]'), got {type(comm).__name__}") \
            from None
    if not isinstance(comm, MPI.Intracomm):
        raise TypeError(f"{fn}: comm must be an mpi4py intracommunicator such as MPI.COMM_WORLD, "
                        f"got {type(comm).__name__}")
    if comm == MPI.COMM_NULL:
        raise ValueError(f"{fn}: comm must be a valid communicator, got MPI.COMM_NULL")
    return comm


def timeout() -> float:
    """Seconds a rank waits for the others in a collective (inf: forever)."""
    raw = os.environ.get("FUSEDPROP_COMM_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"FUSEDPROP_COMM_TIMEOUT must be a number of seconds, got {raw!r}") from None
    if not value >= 0:
        raise ValueError(f"FUSEDPROP_COMM_TIMEOUT must be >= 0 seconds, got {raw!r}")
    return float("inf") if value == 0 else value


def abort(comm, message: str, details: str = "") -> None:
    """Say why on stderr, then end every rank of the job (MPI_Abort: mpiexec
    kills them all and exits non-zero)."""
    sys.stderr.write(f"{details}fusedprop: rank {comm.Get_rank()} of {comm.Get_size()}: {message}; "
                     "aborting the MPI job (MPI_Abort)\n")
    sys.stderr.flush()
    # mpiexec forwards each rank's output asynchronously and stops when the
    # job is aborted: a moment first, so the message gets through.
    time.sleep(_LAST_WORDS)
    comm.Abort(1)


def wait(comm, request, what: str, limit: float | None = None) -> None:
    """Complete a non-blocking collective, aborting the job after the timeout."""
    limit = timeout() if limit is None else limit
    if limit == float("inf"):
        request.Wait()
        return
    start = time.monotonic()
    deadline = start + limit
    # Test drives MPI's progress engine as Wait does. After a short spin the
    # wait sleeps between tests, so ranks waiting for a slow one (more ranks
    # than cores, or cores shared with other work) leave it the CPU.
    while not request.Test():
        now = time.monotonic()
        if now - start > _SPIN:
            time.sleep(_NAP)
        if now > deadline:
            abort(comm, f"{what}: the other ranks did not arrive within {limit:g} s (FUSEDPROP_COMM_TIMEOUT); "
                        "one of them has failed, hangs or left the training loop")


def allgather(comm, send: np.ndarray, what: str) -> np.ndarray:
    """(P, len(send)) array of every rank's ``send``, in rank order."""
    out = np.empty((comm.Get_size(), send.size), send.dtype)
    wait(comm, comm.Iallgather(send, out), what)
    return out


def sum_rows(rows: np.ndarray, out: np.ndarray) -> np.ndarray:
    """rows[0] + rows[1] + ... in this order: the same bits on every rank."""
    if len(rows) == 1:
        np.copyto(out, rows[0])
        return out
    np.add(rows[0], rows[1], out=out)  # one pass for the first two
    for r in range(2, len(rows)):
        out += rows[r]
    return out


def bounds(n: int, size: int, rank: int) -> tuple:
    """Rank's contiguous slice [lo, hi) of n rows: sizes differ by at most one."""
    base, extra = divmod(n, size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


def run_or_abort(comm, fn, *args):
    """fn(*args); an exception on this rank aborts the job, since the other
    ranks would otherwise wait for it in their next collective."""
    if comm.Get_size() == 1:  # nobody to leave waiting: a plain exception (a notebook survives it)
        return fn(*args)
    try:
        return fn(*args)
    except BaseException as e:  # noqa: BLE001 (KeyboardInterrupt too: the others would hang)
        abort(comm, f"{type(e).__name__} in the training loop", traceback.format_exc())
        raise


class DataParallel:
    """The gradient buffers and the collective of one ``TrainStep``.

    ``gathered`` is a (P, bytes) array: row r is rank r's buffer, the
    gradients of its slice in the model's dtype, then (8-byte aligned) three
    float64: its weighted loss, the global batch size and an ok flag (so the
    loss and the size stay exact in float32). A rank computes straight into
    its own row and gathers in place, so its gradients are never copied
    before they are sent; the sum goes to ``summed``, which ``p.grad`` views."""

    def __init__(self, comm, slots: list, dtype, fn: str) -> None:
        self.comm = check_comm(comm, fn)
        from mpi4py import MPI

        self._in_place = MPI.IN_PLACE
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.params = [p for p in slots if p is not None]
        sizes = [p.data.size for p in self.params]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.n = int(offsets[-1])
        self.dtype = np.dtype(dtype)
        self.grad_bytes = self.n * self.dtype.itemsize
        self.tail_at = -(-self.grad_bytes // 8) * 8
        self.gathered = np.zeros((self.size, self.tail_at + 8 * _TAIL), np.uint8)
        own = self.gathered[self.rank]
        self.local = own[:self.grad_bytes].view(self.dtype)
        self.tail = own[self.tail_at:].view(np.float64)
        self.summed = np.zeros(self.n, self.dtype)
        spans = list(zip(self.params, offsets, offsets[1:]))
        self.local_views = [self.local[a:b].reshape(p.data.shape) for p, a, b in spans]
        self.views = [self.summed[a:b].reshape(p.data.shape) for p, a, b in spans]
        self.broadcast_parameters()

    def broadcast_parameters(self) -> None:
        """Rank 0's parameters on every rank (as PyTorch's DDP does when it is
        built), so differently seeded ranks still train one model."""
        for p, v in zip(self.params, self.views):
            v[...] = p.data
        wait(self.comm, self.comm.Ibcast(self.summed, root=0), "TrainStep: broadcasting the parameters")
        for p, v in zip(self.params, self.views):
            p.data[...] = v

    def local_slice(self, n: int) -> slice:
        """This rank's rows of a global batch of n rows."""
        return slice(*bounds(n, self.size, self.rank))

    def gradients(self, local_grads, x, target, n: int, mean: bool) -> float:
        """The global batch's gradients in every ``p.grad`` (the same bits on
        every rank) and its loss; (x, target) are this rank's rows
        (``local_slice``) of a global batch of n rows. ``local_grads(x, t)``
        writes the gradients of the rows into the ``p.grad`` arrays (here
        views of this rank's row) and returns their loss. The caller then
        runs the optimizer."""
        rows_here = len(x)
        for p, v in zip(self.params, self.local_views):
            p.grad = v
        local, tail, error = self.local, self.tail, None
        try:
            loss = local_grads(x, target) if rows_here else 0.0
            if not rows_here:
                local[...] = 0
            for p, v in zip(self.params, self.local_views):
                if p.grad is not v:  # the Python backends allocate their own
                    v[...] = p.grad
            if mean and self.size > 1:
                local *= rows_here / n
                loss *= rows_here / n
            tail[0] = loss
        except Exception as e:  # still take part, so the others learn of it instead of waiting
            error = e
        tail[1] = n
        tail[2] = error is None
        for p, v in zip(self.params, self.views):
            p.grad = v  # the sum's views, whatever happens below
        wait(self.comm, self.comm.Iallgather(self._in_place, self.gathered), "TrainStep: summing the gradients")
        if error is not None:
            raise error
        tails = self.gathered[:, self.tail_at:].view(np.float64)
        failed = [r for r in range(self.size) if tails[r, 2] != 1]
        if failed:
            raise RuntimeError(f"TrainStep: rank {failed[0]} failed to compute its gradients (its error is "
                               "raised there); no rank has updated its parameters")
        if not (tails[:, 1] == tails[0, 1]).all():
            raise ValueError(f"TrainStep: every rank must be given the same global batch; batch sizes "
                             f"{[int(s) for s in tails[:, 1]]} on ranks 0..{self.size - 1}")
        sum_rows(self.gathered[:, :self.grad_bytes].view(self.dtype), self.summed)
        return float(sum_rows(tails[:, :1], np.empty(1))[0])

    def parameter_digest(self) -> str:
        h = hashlib.sha256()
        for p in self.params:
            h.update(np.ascontiguousarray(p.data).view(np.uint8))
        return h.hexdigest()

    def sum(self, values, what: str) -> np.ndarray:
        """Every rank's float64 ``values`` added in rank order (the same bits everywhere)."""
        values = np.asarray(values, np.float64)
        return sum_rows(allgather(self.comm, values, what), np.empty_like(values))

    def agree(self, what: str, **values) -> None:
        """ValueError on every rank unless every rank holds the same values."""
        mine = hashlib.sha256(repr(sorted(values.items())).encode()).digest()
        rows = allgather(self.comm, np.frombuffer(mine, np.uint8), what)
        if not (rows == rows[0]).all():
            differ = [r for r in range(self.size) if (rows[r] != rows[0]).any()]
            raise ValueError(f"{what}: rank {differ[0]} differs from rank 0 (this rank has "
                             f"{', '.join(f'{k}={v!r}' for k, v in values.items())}); every rank must run "
                             "the same call on the same data")

    def share_generator(self, generator) -> None:
        """Rank 0's generator state on every rank: the same shuffles everywhere."""
        generator.bit_generator.state = self.comm.bcast(generator.bit_generator.state, root=0)
