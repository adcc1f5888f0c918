"""Data-parallel training on one machine (--nproc N) or under a cluster launcher.

--nproc N spawns N processes with torch.multiprocessing.spawn (gloo on CPU, NCCL on CUDA, one GPU
per process); nothing depends on torchrun, whose Debian torch 1.13 build fails on Python 3.11. When
RANK and WORLD_SIZE are in the environment (torchrun, SLURM wrappers, ...), this process joins that
group instead (MASTER_ADDR / MASTER_PORT from the environment, LOCAL_RANK picks the GPU).

If any process dies, spawn stops the others and we say which one died and where the last complete
checkpoint is (checkpoints are written to a temporary file and renamed, so it is never half-written).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from typing import Optional

import torch


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _device_for(device: str, local_rank: int) -> str:
    if device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda: this PyTorch sees no CUDA device (torch.cuda.is_available() is False); use --device cpu")
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(f"process {local_rank} needs a GPU but only {torch.cuda.device_count()} are visible")
        torch.cuda.set_device(local_rank)
        return f"cuda:{local_rank}"
    return "cpu"


def _threads(world: int) -> None:
    # Processes share the cores: without this each one starts a thread per core and they thrash. A
    # lone process takes every core (some builds, Debian's among them, start with one thread).
    # OMP_NUM_THREADS, when set, is the user's choice and is kept.
    if os.environ.get("OMP_NUM_THREADS"):
        return
    cores = os.cpu_count() or 1
    torch.set_num_threads(max(1, cores // max(1, world)))


def _worker(rank: int, world: int, flags: dict, device: str, port: int) -> None:
    import torch.distributed as dist
    from .train import run_train

    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    sys.stderr.write(f"rank {rank} of {world}: pid {os.getpid()}\n")
    sys.stderr.flush()
    dev = _device_for(device, rank)
    _threads(world)
    dist.init_process_group("nccl" if dev.startswith("cuda") else "gloo", rank=rank, world_size=world)
    try:
        summary = run_train(flags, rank, world, dev)
        if rank == 0:
            print(json.dumps(summary), flush=True)
    except Exception as error:  # one clear line from the process that failed, not a pickled traceback
        sys.stderr.write(f"pixelvae_torch train (process {rank}): {error}\n")
        sys.stderr.flush()
        os._exit(1)
    dist.destroy_process_group()


def _last_checkpoint_note(out: str) -> str:
    from .checkpoint import CheckpointError, read_checkpoint
    path = os.path.join(out, "last.safetensors")
    if not os.path.exists(path):
        return f"no checkpoint was written yet in {out}"
    try:
        c = read_checkpoint(path)
        return f"the last checkpoint {path} (step {c.config['step']}) is complete: continue with --resume {path}"
    except CheckpointError as error:  # should not happen: writes are atomic
        return f"the last checkpoint {path} cannot be read: {error}"


def train(flags: dict, nproc: int, device: str) -> int:
    """Runs `train` on nproc processes (or joins a launcher's group). Returns the exit code."""
    from .train import run_train

    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        import torch.distributed as dist
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", rank))
        dev = _device_for(device, local) if device == "cuda" else "cpu"
        _threads(int(os.environ.get("LOCAL_WORLD_SIZE", world)))
        dist.init_process_group("nccl" if dev.startswith("cuda") else "gloo", rank=rank, world_size=world)
        try:
            summary = run_train(flags, rank, world, dev)
            if rank == 0:
                print(json.dumps(summary), flush=True)
        finally:
            dist.destroy_process_group()
        return 0
    if nproc <= 1:
        dev = _device_for(device, 0)
        _threads(1)
        summary = run_train(flags, 0, 1, dev)
        print(json.dumps(summary), flush=True)
        return 0
    import signal
    import torch.multiprocessing as mp
    port = _free_port()
    context = mp.spawn(_worker, args=(nproc, flags, device, port), nprocs=nproc, join=False)
    try:
        while not context.join():
            pass
    except (mp.ProcessExitedException, mp.ProcessRaisedException) as error:
        # join() stops the others (SIGTERM) once one fails; a rank killed from outside is the cause even
        # when its peer noticed the broken connection and exited first.
        codes = [p.exitcode for p in context.processes]
        killed = [(i, c) for i, c in enumerate(codes) if c is not None and c < 0 and -c != signal.SIGTERM]
        if killed:
            index, how = killed[0][0], f"was killed by {signal.Signals(-killed[0][1]).name}"
        elif isinstance(error, mp.ProcessExitedException) and error.signal_name:
            index, how = error.error_index, f"was killed by {error.signal_name}"
        elif isinstance(error, mp.ProcessExitedException):
            index, how = error.error_index, f"exited with code {error.exit_code}"
        else:
            index, how = error.error_index, "failed: " + (str(error).strip().splitlines() or ["an error"])[-1]
        sys.stderr.write(f"pixelvae_torch train: process {index} of {nproc} {how}; the other processes were stopped. "
                         f"{_last_checkpoint_note(flags['out'])}\n")
        return 1
    return 0
