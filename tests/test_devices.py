"""Device choice and the local GPU leases (with a faked CUDA machine)."""

import subprocess
import sys
import time

import pytest
import torch

from selectivity import devices
from selectivity.devices import (
    CPU_FORWARD_BATCH_SIZE,
    GPU_FORWARD_BATCH_SIZES,
    device_type,
    forward_batch_size,
    select_device,
)


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def two_local_gpus(monkeypatch):
    """A machine with two GPUs and no scheduler that assigned any."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)


def test_cpu_is_always_the_cpu(tmp_path, two_local_gpus):
    with select_device("cpu", 1, tmp_path) as lease:
        assert lease.device == torch.device("cpu")
    assert not list(tmp_path.iterdir())


def test_auto_without_cuda_or_without_an_allotted_gpu_is_the_cpu(tmp_path, monkeypatch, no_cuda):
    assert select_device("auto", 1, tmp_path).device == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("auto", 0, tmp_path).device == torch.device("cpu")


def test_cuda_without_cuda_is_an_error_that_says_what_to_do(tmp_path, no_cuda):
    with pytest.raises(ValueError) as error:
        select_device("cuda", 1, tmp_path)
    message = str(error.value)
    # names the config key and the value, and what to write instead
    assert "config key 'device'" in message and "'cuda'" in message and "'auto' or 'cpu'" in message


def test_unknown_request_is_named(tmp_path):
    with pytest.raises(ValueError, match="'gpu'"):
        select_device("gpu", 1, tmp_path)


def test_local_jobs_lease_different_gpus_and_free_them_on_exit(tmp_path, two_local_gpus):
    first = select_device("auto", 1, tmp_path)
    second = select_device("cuda", 1, tmp_path)
    assert {first.device, second.device} == {torch.device("cuda:0"), torch.device("cuda:1")}
    with pytest.raises(RuntimeError, match="all 2 GPUs are leased"):
        select_device("auto", 1, tmp_path)
    first.release()
    with select_device("auto", 1, tmp_path) as third:
        assert third.device == first.device
    second.release()
    with select_device("auto", 1, tmp_path) as fourth:
        assert fourth.device == torch.device("cuda:0")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu0.lock", "gpu1.lock"]


@pytest.mark.parametrize(
    "requested,gpus,cuda,kind",
    [
        ("cpu", 1, True, "cpu"),
        ("auto", 1, False, "cpu"),
        ("auto", 0, True, "cpu"),
        ("auto", 1, True, "cuda"),
        ("cuda", 0, True, "cuda"),
    ],
)
def test_the_device_type_is_the_kind_of_device_the_job_then_leases(
    tmp_path, monkeypatch, requested, gpus, cuda, kind
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # a scheduler's GPU: no lock, no real device touched
    assert device_type(requested, gpus) == kind
    assert select_device(requested, gpus, tmp_path).device.type == kind


def test_the_device_type_refuses_what_select_device_refuses(no_cuda):
    with pytest.raises(ValueError, match="'auto' or 'cpu'"):
        device_type("cuda", 1)
    with pytest.raises(ValueError, match="'gpu'"):
        device_type("gpu", 1)


@pytest.mark.parametrize("section", sorted(GPU_FORWARD_BATCH_SIZES))
def test_auto_batch_sizes_are_cache_sized_on_a_cpu_and_large_on_a_gpu(section):
    assert forward_batch_size("auto", "cpu", section) == CPU_FORWARD_BATCH_SIZE == 64
    assert forward_batch_size("auto", "cuda", section) == GPU_FORWARD_BATCH_SIZES[section] >= 500
    assert forward_batch_size(37, "cpu", section) == forward_batch_size(37, "cuda", section) == 37


@pytest.mark.parametrize("setting", [0, -3, 2.5, True, "big"])
def test_a_bad_batch_size_is_named(setting):
    with pytest.raises(ValueError, match=f"causal batch size .*got {setting!r}"):
        forward_batch_size(setting, "cpu", "causal")


@pytest.mark.parametrize("variable,value", [("CUDA_VISIBLE_DEVICES", "3"), ("SLURM_JOB_ID", "12345")])
def test_scheduler_assigned_gpu_is_cuda0_without_locks(
    tmp_path, two_local_gpus, monkeypatch, variable, value
):
    monkeypatch.setenv(variable, value)
    with select_device("auto", 1, tmp_path / "locks") as lease:
        assert lease.device == torch.device("cuda:0")
    assert not (tmp_path / "locks").exists()
    assert devices.os.environ[variable] == value


HOLD_LOCK = """
import fcntl, sys, time
handle = open(sys.argv[1], "a+")
fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("locked", flush=True)
time.sleep(120)
"""


def test_a_gpu_locked_by_another_process_is_skipped_until_that_process_dies(tmp_path, two_local_gpus):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path / "gpu0.lock")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with select_device("auto", 1, tmp_path) as lease:
            assert lease.device == torch.device("cuda:1")
            holder.kill()  # the kernel releases a dead process's flock
            holder.wait(timeout=30)
            with select_device("auto", 1, tmp_path) as other:
                assert other.device == torch.device("cuda:0")
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        holder.stdout.close()


def test_waiting_lease_gets_the_gpu_once_it_is_freed(tmp_path, monkeypatch, two_local_gpus):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    holder = select_device("auto", 1, tmp_path)
    original_sleep = time.sleep

    def release_then_sleep(seconds):
        holder.release()
        original_sleep(min(seconds, 0.01))

    monkeypatch.setattr(devices.time, "sleep", release_then_sleep)
    with select_device("auto", 1, tmp_path, wait_seconds=5) as lease:
        assert lease.device == torch.device("cuda:0")
