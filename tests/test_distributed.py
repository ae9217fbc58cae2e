"""Tests for labutils.distributed: shards, the one-process reference, and real 2-process launches."""

from __future__ import annotations

import pytest
import torch

from labutils.distributed import (
    GRADIENT_SYNCS,
    _check_tasks,
    make_network,
    max_parameter_difference,
    run_data_parallel,
    run_torchrun,
    shard_slice,
    torchrun_command,
    train_shards,
)


def _data(rows: int = 256, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(rows, 40, generator=generator), torch.randint(0, 10, (rows,), generator=generator)


def _task(**changes) -> dict:
    inputs, targets = _data()
    task = dict(
        network=dict(hidden_size=16),
        initial_state=make_network(seed=3, hidden_size=16).state_dict(),
        inputs=inputs,
        targets=targets,
        batch_size=32,
        epochs=1,
        learning_rate=0.1,
        seed=7,
        max_steps=5,
    )
    task.update(changes)
    return task


def _reference(task: dict) -> dict:
    network = make_network(seed=3, hidden_size=16)
    train_shards(
        network,
        task["inputs"],
        task["targets"],
        batch_size=task["batch_size"],
        epochs=task["epochs"],
        learning_rate=task["learning_rate"],
        seed=task["seed"],
        max_steps=task["max_steps"],
    )
    return network.state_dict()


def test_shard_slice_gives_equal_contiguous_shards():
    assert [shard_slice(8, world_size=2, rank=rank) for rank in (0, 1)] == [slice(0, 4), slice(4, 8)]
    assert shard_slice(6, world_size=1, rank=0) == slice(0, 6)


@pytest.mark.parametrize("batch_size, world_size, rank", [(7, 2, 0), (1, 2, 0), (8, 2, 2), (8, 2, -1), (8, 0, 0)])
def test_shard_slice_refuses_unequal_shards_and_bad_ranks(batch_size, world_size, rank):
    with pytest.raises(ValueError):
        shard_slice(batch_size, world_size=world_size, rank=rank)


def test_make_network_is_seeded_and_leaves_the_global_generator_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first, second = make_network(seed=5), make_network(seed=5)
    assert torch.rand(1) == expected_next
    assert max_parameter_difference(first.state_dict(), second.state_dict()) == 0.0
    assert max_parameter_difference(first.state_dict(), make_network(seed=6).state_dict()) > 0


def test_train_shards_is_deterministic_and_learns():
    inputs, targets = _data()
    first, second = make_network(seed=1, hidden_size=16), make_network(seed=1, hidden_size=16)
    before = torch.nn.functional.cross_entropy(first(inputs), targets).item()
    timing = train_shards(first, inputs, targets, batch_size=32, epochs=5, learning_rate=0.2, seed=0)
    train_shards(second, inputs, targets, batch_size=32, epochs=5, learning_rate=0.2, seed=0)
    assert timing["steps"] == 5 * (256 // 32) and timing["samples"] == timing["steps"] * 32
    assert max_parameter_difference(first.state_dict(), second.state_dict()) == 0.0
    assert torch.nn.functional.cross_entropy(first(inputs), targets).item() < before


def test_train_shards_refuses_bad_arguments():
    inputs, targets = _data()
    network = make_network(seed=0)
    with pytest.raises(ValueError, match="gradient_sync"):
        train_shards(network, inputs, targets, batch_size=32, epochs=1, learning_rate=0.1, seed=0, gradient_sync="x")
    with pytest.raises(ValueError, match="several workers"):
        train_shards(network, inputs, targets, batch_size=32, epochs=1, learning_rate=0.1, seed=0, world_size=2)


def test_max_parameter_difference_refuses_different_keys():
    with pytest.raises(ValueError, match="keys"):
        max_parameter_difference({"a": torch.zeros(1)}, {"b": torch.zeros(1)})


def test_tasks_are_checked_before_any_process_starts():
    with pytest.raises(ValueError, match="misses"):
        _check_tasks({"network": {}})
    with pytest.raises(ValueError, match="gradient_sync"):
        _check_tasks(_task(gradient_sync="sum"))
    with pytest.raises(ValueError, match="no task"):
        _check_tasks([])
    tasks, single = _check_tasks(_task())
    assert single and tasks[0]["gradient_sync"] == "ddp"


def test_torchrun_command_standalone_and_multi_node():
    standalone = torchrun_command(task_path="t.pt", result_dir="out")
    assert standalone[1:4] == ["-m", "torch.distributed.run", "--standalone"]
    assert standalone[-6:] == ["-m", "labutils.distributed", "--task", "t.pt", "--out", "out"]
    multi = torchrun_command(task_path="t.pt", result_dir="out", nnodes=2, node_rank=1, rdzv_endpoint="h:29500")
    assert {"--nnodes=2", "--node_rank=1", "--rdzv_endpoint=h:29500", "--rdzv_backend=c10d"} <= set(multi)
    assert "--standalone" not in multi
    with pytest.raises(ValueError, match="rdzv_endpoint"):
        torchrun_command(task_path="t.pt", result_dir="out", nnodes=2)
    with pytest.raises(ValueError):
        torchrun_command(task_path="t.pt", result_dir="out", nnodes=2, node_rank=2, rdzv_endpoint="h:1")


def test_two_processes_match_one_process_and_the_sum_bug_does_not():
    task = _task()
    reference = _reference(task)
    results = run_data_parallel([dict(task, gradient_sync=sync) for sync in GRADIENT_SYNCS], world_size=2)
    assert len(results) == len(GRADIENT_SYNCS) and all(len(ranks) == 2 for ranks in results)
    errors = {
        sync: max_parameter_difference(ranks[0]["state"], reference) for sync, ranks in zip(GRADIENT_SYNCS, results)
    }
    assert errors["ddp"] < 1e-5 and errors["all_reduce_mean"] < 1e-5
    assert errors["all_reduce_sum"] > 1e-3
    for ranks in results:  # every worker holds the same copy, even with the bug
        assert max_parameter_difference(ranks[0]["state"], ranks[1]["state"]) == 0.0
        assert ranks[0]["steps"] == 5 and ranks[0]["samples"] == 5 * 32


def test_a_failing_worker_raises_a_clear_error():
    broken = _task(network=dict(hidden_size=8))  # the initial state has 16 hidden units: loading fails
    with pytest.raises(RuntimeError, match="worker failed"):
        run_data_parallel(broken, world_size=2, timeout=120)


def test_torchrun_launch_matches_one_process():
    task = _task(max_steps=3)
    ranks = run_torchrun(task, nproc_per_node=2, timeout=180)
    assert len(ranks) == 2
    assert max_parameter_difference(ranks[0]["state"], _reference(task)) < 1e-5
