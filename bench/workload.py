"""Realistic record documents (~3 KB) as ``smt run`` sends them, and their labels."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

#: Every record carries two tags; one in RARE_EVERY carries RARE_TAG.
RARE_TAG = "rare"
RARE_EVERY = 100
#: Marks where the label goes in a body template (wrk's Lua scripts fill it in).
LABEL_PLACEHOLDER = "@@LABEL@@"

_START = datetime(2024, 1, 1)
_PACKAGES = ["numpy", "scipy", "matplotlib", "pandas", "h5py", "neo", "quantities",
             "brian2", "sympy", "networkx"]


def label(i: int) -> str:
    """The label of the i-th seeded record; GET scripts pick labels the same way."""
    return f"r{i:07d}"


def record(project_id: str, label: str, i: int = 0) -> dict:
    """A record document like Sumatra 0.8 writes: parameters, 10 dependencies, a platform,
    two output files and two tags."""
    timestamp = (_START + timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S")
    tags = [RARE_TAG if i % RARE_EVERY == 0 else f"batch-{i % 7}", f"series-{i % 13}"]
    return {
        "label": label,
        "timestamp": timestamp,
        "reason": "Scan of the learning rate against the network size, run "
                  f"{i} of the nightly sweep",
        "duration": 12.5 + (i % 100) / 10,
        "executable": {"path": "/usr/bin/python3", "version": "3.11.2", "name": "Python",
                       "options": ""},
        "repository": {"url": "https://git.example.org/lab/simulations.git",
                       "type": "GitRepository", "upstream": None},
        "main_file": "simulate.py",
        "version": f"{(i * 2654435761) % (1 << 40):010x}a1b2c3d4e5f60718293a",
        "parameters": {
            "content": json.dumps({"learning_rate": 0.001 * (1 + i % 10), "n_hidden": 64 + i % 5,
                                   "epochs": 200, "seed": i, "dataset": "mnist-small",
                                   "optimizer": {"name": "adam", "beta1": 0.9, "beta2": 0.999}},
                                  sort_keys=True, indent=2),
            "type": "JSONParameterSet"},
        "input_data": [{"path": "data/mnist-small.npz",
                        "digest": "5e3b0f2c6a1d4e7f8a9b0c1d2e3f4a5b6c7d8e9f", "metadata": {},
                        "creation": "2023-12-01 09:00:00"}],
        "script_arguments": "--config default.param",
        "launch_mode": {"type": "SerialLaunchMode",
                        "parameters": {"working_directory": "/home/ana/sim"}},
        "datastore": {"type": "FileSystemDataStore", "parameters": {"root": "/home/ana/sim/Data"}},
        "input_datastore": {"type": "FileSystemDataStore", "parameters": {"root": "/home/ana/sim"}},
        "outcome": f"accuracy {0.9 + (i % 97) / 1000:.3f}",
        "stdout_stderr": "epoch 200/200 loss=0.0312 accuracy=0.981\nDone.\n",
        "output_data": [
            {"path": f"{label}/loss.png", "digest": f"{i:040x}"[-40:],
             "metadata": {"mimetype": "image/png", "encoding": None, "size": 48213},
             "creation": timestamp},
            {"path": f"{label}/weights.h5", "digest": f"{i * 7:040x}"[-40:],
             "metadata": {"mimetype": "application/x-hdf5", "encoding": None, "size": 1048576},
             "creation": timestamp},
        ],
        "tags": tags,
        "diff": "",
        "user": "Ana Example <ana@example.org>",
        "dependencies": [
            {"path": f"/usr/lib/python3/dist-packages/{name}", "version": f"1.{n}.{i % 3}",
             "name": name, "module": "python", "diff": "", "source": None}
            for n, name in enumerate(_PACKAGES)
        ],
        "platforms": [{"architecture_bits": "64bit", "architecture_linkage": "ELF",
                       "machine": "x86_64", "network_name": "node17.cluster.example.org",
                       "ip_addr": "10.1.2.17", "processor": "x86_64",
                       "release": "6.1.0-18-amd64", "system_name": "Linux",
                       "version": "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)"}],
        "repeats": None,
        "project_id": project_id,
    }


def body(project_id: str, label: str, i: int = 0) -> bytes:
    return json.dumps(record(project_id, label, i)).encode()


def template(project_id: str) -> str:
    """A record body whose label (and output paths) read LABEL_PLACEHOLDER."""
    return json.dumps(record(project_id, LABEL_PLACEHOLDER, 1))
