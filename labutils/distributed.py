"""Data-parallel training on CPU processes: the workers that notebook 16 launches.

Functions that ``torch.multiprocessing`` (start method ``"spawn"``) or ``torchrun`` run in a
new process must be importable, so they live here rather than in the notebook. One *task*
(a dict; a launch saves a list of them with ``torch.save``) describes a run: the network, its initial weights, the
training data, the global batch size, the learning rate, the number of epochs and how the
workers combine their gradients. Every worker

1. joins a process group (backend ``gloo``, one CPU thread per process),
2. walks through the same sequence of global batches (a permutation drawn from the task's
   seed, identical on every worker) and takes its own equal, contiguous shard of each,
3. combines gradients with ``DistributedDataParallel`` (``"ddp"``), with an explicit
   all-reduce followed by a division by the number of workers (``"all_reduce_mean"``), or
   with the classic bug, an all-reduce that sums and never divides (``"all_reduce_sum"``),
4. writes its final weights and timing to a results folder, and
5. always leaves the process group.

Two launchers run a task: :func:`run_data_parallel` (``torch.multiprocessing``, a ``file://``
rendezvous inside a fresh temporary folder, so two notebooks running at once never share a
port) and :func:`run_torchrun` (``python -m torch.distributed.run --standalone``, which
picks a free port itself, on this module's command line). :func:`train_shards` with
``world_size=1`` is the one-process reference on exactly the same global batches.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "GRADIENT_SYNCS",
    "make_network",
    "max_parameter_difference",
    "run_data_parallel",
    "run_torchrun",
    "shard_slice",
    "torchrun_command",
    "train_shards",
    "worker",
]

#: How workers combine their gradients (``None``: one process, nothing to combine).
GRADIENT_SYNCS = ("ddp", "all_reduce_mean", "all_reduce_sum")


def make_network(*, seed: int, input_size: int = 40, hidden_size: int = 64, output_size: int = 10) -> nn.Sequential:
    """A perceptron ``input_size -> hidden_size -> hidden_size -> output_size`` with ReLU.

    Parameters
    ----------
    seed : int
        Seeds the initialization (a local generator; the global one is restored).

    Returns
    -------
    nn.Sequential
        Inputs of shape (batch, input_size), logits of shape (batch, output_size).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Linear(input_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, output_size),
        )


def shard_slice(batch_size: int, *, world_size: int, rank: int) -> slice:
    """The rows of a global batch that worker ``rank`` of ``world_size`` trains on.

    Parameters
    ----------
    batch_size : int
        Rows in the global batch; must be a multiple of ``world_size`` (equal shards).
    world_size : int
    rank : int in [0, world_size)

    Returns
    -------
    slice
        ``slice(rank * shard, (rank + 1) * shard)`` with ``shard = batch_size // world_size``.

    Raises
    ------
    ValueError
        If the shards would be unequal, or ``rank`` is out of range.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    if batch_size < world_size or batch_size % world_size:
        raise ValueError(f"batch_size={batch_size} does not split into {world_size} equal shards")
    shard = batch_size // world_size
    return slice(rank * shard, (rank + 1) * shard)


def train_shards(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    batch_size: int,
    epochs: int,
    learning_rate: float,
    seed: int,
    world_size: int = 1,
    rank: int = 0,
    gradient_sync: str | None = None,
    max_steps: int | None = None,
) -> dict:
    """Train ``model`` in place with SGD on this worker's shard of every global batch.

    Parameters
    ----------
    model : nn.Module
        The network (for ``gradient_sync="ddp"``, wrapped in ``DistributedDataParallel``).
    inputs : Tensor, shape (n, ...)
    targets : Tensor of int64, shape (n,)
    batch_size : int
        The *global* batch size; each worker gets ``batch_size // world_size`` rows of it.
        The last incomplete batch of an epoch is dropped, so all batches have this size.
    epochs : int
    learning_rate : float
    seed : int
        Draws the permutation of every epoch, the same on all workers.
    world_size, rank : int
    gradient_sync : {None, "ddp", "all_reduce_mean", "all_reduce_sum"}
        ``None`` and ``"ddp"`` leave the gradients as backward made them (DDP averages them
        during backward); the other two all-reduce them after backward.
    max_steps : int, optional
        Stop after this many steps.

    Returns
    -------
    dict
        ``steps``, ``samples`` (global samples processed) and ``seconds`` (of the loop).
    """
    if gradient_sync is not None and gradient_sync not in GRADIENT_SYNCS:
        raise ValueError(f"gradient_sync={gradient_sync!r}; use None or one of {GRADIENT_SYNCS}")
    if gradient_sync is None and world_size != 1:
        raise ValueError("several workers need a gradient_sync")
    rows = shard_slice(batch_size, world_size=world_size, rank=rank)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    batches_per_epoch = len(inputs) // batch_size
    steps, started = 0, time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(inputs), generator=generator)
        for batch in range(batches_per_epoch):
            if max_steps is not None and steps >= max_steps:
                break
            index = order[batch * batch_size : (batch + 1) * batch_size][rows]
            optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(inputs[index]), targets[index])
            loss.backward()
            if gradient_sync in ("all_reduce_mean", "all_reduce_sum"):
                _all_reduce_gradients(model, world_size=world_size, average=gradient_sync == "all_reduce_mean")
            optimizer.step()
            steps += 1
    return {"steps": steps, "samples": steps * batch_size, "seconds": time.perf_counter() - started}


def _all_reduce_gradients(model: nn.Module, *, world_size: int, average: bool) -> None:
    import torch.distributed as dist

    for parameter in model.parameters():
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
            if average:
                parameter.grad /= world_size


def max_parameter_difference(first: dict, second: dict) -> float:
    """The largest absolute difference between two state dicts with the same keys and shapes."""
    if first.keys() != second.keys():
        raise ValueError(f"the state dicts differ in keys: {sorted(set(first) ^ set(second))}")
    return max(float((first[key].double() - second[key].double()).abs().max()) for key in first)


# --------------------------------------------------------------------------- the worker
def _work(rank: int, world_size: int, init_method: str, task_path: str, result_dir: str) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)  # one process per core; threads would only fight over the cores
    tasks = torch.load(task_path, weights_only=True)
    dist.init_process_group(
        "gloo",
        init_method=init_method,
        rank=rank,
        world_size=world_size,
        timeout=timedelta(seconds=int(tasks[0].get("timeout", 120))),
    )
    try:
        for number, task in enumerate(tasks):
            network = make_network(seed=0, **task["network"])
            network.load_state_dict(task["initial_state"])
            gradient_sync = task["gradient_sync"]
            model = DistributedDataParallel(network) if gradient_sync == "ddp" else network
            dist.barrier()  # time the training, not the start-up
            timing = train_shards(
                model,
                task["inputs"],
                task["targets"],
                batch_size=task["batch_size"],
                epochs=task["epochs"],
                learning_rate=task["learning_rate"],
                seed=task["seed"],
                world_size=world_size,
                rank=rank,
                gradient_sync=gradient_sync,
                max_steps=task.get("max_steps"),
            )
            dist.barrier()
            torch.save({"state": network.state_dict(), **timing}, Path(result_dir) / f"task{number}_rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def worker(rank: int, world_size: int, init_method: str, task_path: str, result_dir: str) -> None:
    """The function ``torch.multiprocessing`` runs in each process (``rank`` comes first).

    Parameters
    ----------
    rank, world_size : int
    init_method : str
        Where the workers meet, e.g. ``"file:///tmp/x/rendezvous"`` or ``"env://"``.
    task_path : str
        The list of checked tasks, saved with ``torch.save`` (see :func:`run_data_parallel`).
    result_dir : str
        Worker ``rank`` writes ``task{k}_rank{rank}.pt`` there for task ``k``: ``state``,
        ``steps``, ``samples``, ``seconds``.
    """
    _work(rank, world_size, init_method, task_path, result_dir)


def _check_tasks(tasks) -> tuple:
    """``(list of checked tasks, whether one dict was given)``."""
    single = isinstance(tasks, dict)
    tasks = [tasks] if single else list(tasks)
    if not tasks:
        raise ValueError("no task to run")
    return [_check_task(task) for task in tasks], single


def _check_task(task: dict) -> dict:
    if not isinstance(task, dict):
        raise ValueError(f"a task is a dict, got {type(task).__name__}")
    required = ("network", "initial_state", "inputs", "targets", "batch_size", "epochs", "learning_rate", "seed")
    missing = [key for key in required if key not in task]
    if missing:
        raise ValueError(f"the task misses {missing}")
    task = dict(task, gradient_sync=task.get("gradient_sync", "ddp"))
    if task["gradient_sync"] not in GRADIENT_SYNCS:
        raise ValueError(f"gradient_sync={task['gradient_sync']!r}; use one of {GRADIENT_SYNCS}")
    return task


def _load_results(folder: Path, world_size: int, count: int, single: bool) -> list:
    results = []
    for number in range(count):
        per_rank = []
        for rank in range(world_size):
            path = folder / f"task{number}_rank{rank}.pt"
            if not path.is_file():
                raise RuntimeError(f"worker {rank} of {world_size} finished without writing its result {number}")
            per_rank.append(torch.load(path, weights_only=True))
        results.append(per_rank)
    return results[0] if single else results


def run_data_parallel(tasks, *, world_size: int = 2, timeout: float = 180) -> list:
    """Run tasks on ``world_size`` new processes (``torch.multiprocessing``, ``"spawn"``).

    The processes start once (importing PyTorch takes seconds) and run the tasks one after
    the other in one process group.

    Parameters
    ----------
    tasks : dict or list of dict
        Each: ``network`` (keyword arguments of :func:`make_network` but ``seed``),
        ``initial_state`` (its state dict), ``inputs`` (Tensor (n, input_size)), ``targets``
        (int64 (n,)), ``batch_size`` (global), ``epochs``, ``learning_rate``, ``seed``, and
        optionally ``gradient_sync`` (default ``"ddp"``), ``max_steps``.
    world_size : int, default 2
    timeout : float, default 180
        Seconds before the workers are stopped and ``TimeoutError`` is raised.

    Returns
    -------
    list of dict, or list of lists of dict
        For one task, one dict per rank: ``state`` (the final state dict), ``steps``,
        ``samples``, ``seconds`` (of the training loop). For a list of tasks, one such list
        per task.

    Raises
    ------
    RuntimeError
        If a worker fails (the message holds its traceback).
    """
    import torch.multiprocessing as multiprocessing

    tasks, single = _check_tasks(tasks)
    with tempfile.TemporaryDirectory(prefix="data_parallel_") as folder:
        folder = Path(folder)
        torch.save(tasks, folder / "task.pt")
        init_method = (folder / "rendezvous").as_uri()  # a fresh file: no port to collide on
        arguments = (world_size, init_method, str(folder / "task.pt"), str(folder))
        context = multiprocessing.start_processes(
            worker, args=arguments, nprocs=world_size, join=False, start_method="spawn"
        )
        deadline = time.monotonic() + timeout
        try:
            while not context.join(timeout=0.5):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the {world_size} workers did not finish within {timeout} s")
        except (multiprocessing.ProcessRaisedException, multiprocessing.ProcessExitedException) as error:
            raise RuntimeError(f"a data-parallel worker failed:\n{error}") from None
        finally:
            for process in context.processes:
                if process.is_alive():
                    process.terminate()
                    process.join()
        return _load_results(folder, world_size, len(tasks), single)


def torchrun_command(
    *,
    task_path: str,
    result_dir: str,
    nproc_per_node: int = 2,
    nnodes: int = 1,
    node_rank: int = 0,
    rdzv_endpoint: str | None = None,
) -> list:
    """The ``torchrun`` command line that runs a task with this module on one or several machines.

    Parameters
    ----------
    task_path, result_dir : str
    nproc_per_node : int, default 2
        Worker processes on each machine (one per GPU or per core).
    nnodes : int, default 1
        Machines. With 1 the launch is ``--standalone`` (a local rendezvous on a free port).
    node_rank : int, default 0
        This machine's index in ``[0, nnodes)``.
    rdzv_endpoint : str, optional
        ``host:port`` of the rendezvous, reachable from every machine; required if
        ``nnodes > 1``.

    Returns
    -------
    list of str
        Arguments for ``subprocess.run``, starting with this Python interpreter.
    """
    if nproc_per_node < 1 or nnodes < 1 or not 0 <= node_rank < nnodes:
        raise ValueError(f"need nproc_per_node, nnodes >= 1 and 0 <= node_rank < nnodes; got "
                         f"{nproc_per_node}, {nnodes}, {node_rank}")  # fmt: skip
    command = [sys.executable, "-m", "torch.distributed.run"]
    if nnodes == 1:
        command += ["--standalone"]
    else:
        if not rdzv_endpoint:
            raise ValueError("several machines need rdzv_endpoint='host:port'")
        command += [f"--nnodes={nnodes}", f"--node_rank={node_rank}", "--rdzv_backend=c10d",
                    f"--rdzv_endpoint={rdzv_endpoint}"]  # fmt: skip
    return command + [f"--nproc_per_node={nproc_per_node}", "-m", "labutils.distributed",
                      "--task", str(task_path), "--out", str(result_dir)]  # fmt: skip


def run_torchrun(tasks, *, nproc_per_node: int = 2, timeout: float = 180) -> list:
    """Run tasks with ``torchrun --standalone`` on this machine (see :func:`run_data_parallel`).

    Returns
    -------
    list of dict, or list of lists of dict
        As :func:`run_data_parallel`.

    Raises
    ------
    RuntimeError
        If torchrun exits with an error (the message ends with its output).
    """
    tasks, single = _check_tasks(tasks)
    with tempfile.TemporaryDirectory(prefix="torchrun_") as folder:
        folder = Path(folder)
        torch.save(tasks, folder / "task.pt")
        command = torchrun_command(task_path=str(folder / "task.pt"), result_dir=str(folder),
                                   nproc_per_node=nproc_per_node)  # fmt: skip
        project = str(Path(__file__).resolve().parent.parent)
        environment = dict(os.environ, OMP_NUM_THREADS="1")
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [project, environment.get("PYTHONPATH")]))
        finished = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment)
        if finished.returncode != 0:
            output = (finished.stdout + finished.stderr)[-3000:]
            raise RuntimeError(f"torchrun exited with status {finished.returncode}:\n{output}")
        return _load_results(folder, nproc_per_node, len(tasks), single)


def main(argv: list | None = None) -> None:
    """Entry point for ``torchrun ... -m labutils.distributed --task T --out D`` (reads RANK, WORLD_SIZE)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, help="the task file written with torch.save")
    parser.add_argument("--out", required=True, help="the folder for the task{k}_rank{r}.pt results")
    arguments = parser.parse_args(argv)
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    _work(rank, world_size, "env://", arguments.task, arguments.out)


if __name__ == "__main__":
    main()
