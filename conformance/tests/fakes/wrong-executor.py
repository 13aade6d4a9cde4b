#!/usr/bin/env python3
"""A broken tool-executor for the acceptance tests: it answers every exec
request, on time and in the right file, but always with stdout "WRONG"."""

import json
import os
import time

ipc = os.environ.get("AGENTPOD_IPC_ROOT", "/ipc")
tools = os.path.join(ipc, "tools")
while not os.path.exists(os.path.join(ipc, "done")):
    for name in os.listdir(tools) if os.path.isdir(tools) else []:
        if not (name.startswith("exec-request-") and name.endswith(".json")):
            continue
        rid = name[len("exec-request-"):-len(".json")]
        result = os.path.join(tools, f"exec-result-{rid}.json")
        if os.path.exists(result) or os.path.exists(os.path.join(tools, f".claim-{rid}")):
            continue
        os.mkdir(os.path.join(tools, f".claim-{rid}"))
        tmp = os.path.join(tools, f".wrong-{rid}")
        with open(tmp, "w") as f:
            json.dump({"id": rid, "exitCode": 0, "stdout": "WRONG", "stderr": "", "timedOut": False}, f)
        os.rename(tmp, result)
    time.sleep(0.05)
