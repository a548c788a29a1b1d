"""adapters/tables/lease_process: a lease's process is "gone" only when provably so."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from sync_core.adapters.tables.lease_process import process_gone, this_process

HERE = this_process().rpartition(":")[0]


def test_this_process_is_never_gone():
    assert this_process() == f"{HERE}:{os.getpid()}"
    assert HERE.startswith(socket.gethostname() + "|")
    assert not process_gone(this_process())


def test_a_process_that_ended_on_this_host_is_gone():
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                           capture_output=True, text=True)  # fmt: skip
    assert process_gone(f"{HERE}:{ended.stdout.strip()}")


def test_a_live_process_of_this_host_is_not_gone():
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as child:
        try:
            assert not process_gone(f"{HERE}:{child.pid}")
        finally:
            child.kill()


def test_another_host_or_no_name_is_never_gone():
    assert not process_gone(None) and not process_gone("")
    assert not process_gone("another-host.example:1")
    assert not process_gone(f"{socket.gethostname()}:not-a-pid")


def test_a_dead_pid_of_another_machine_or_container_with_this_host_name_is_never_gone():
    # A container on host networking has the host's name and its own pids; two machines may
    # share a name. A pid absent here says nothing about a process there: its lease stays live.
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                           capture_output=True, text=True)  # fmt: skip
    pid = ended.stdout.strip()
    name = socket.gethostname()
    assert not process_gone(f"{name}:{pid}")  # a row naming only the host
    assert not process_gone(f"{name}|another-boot|pid:[4026531836]:{pid}")
    name_, boot, _namespace = HERE.split("|")
    assert not process_gone(f"{name_}|{boot}|pid:[1]:{pid}")  # another pid namespace
    assert process_gone(f"{HERE}:{pid}")
