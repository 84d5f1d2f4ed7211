"""The generated protobuf code matches the .proto, and reflection serves it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

REPO = Path(__file__).resolve().parents[1]


def test_generated_code_matches_proto(tmp_path):
    subprocess.run(
        [sys.executable, str(REPO / "proto" / "generate.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    committed = REPO / "bandit" / "proto"

    generated = sorted(path.name for path in tmp_path.iterdir())

    assert generated == ["decision_pb2.py", "decision_pb2.pyi", "decision_pb2_grpc.py", "decision_pb2_grpc.pyi"]
    for name in generated:
        assert (tmp_path / name).read_text() == (committed / name).read_text(), (
            f"bandit/proto/{name} differs from the .proto; run 'python proto/generate.py' and commit"
        )


def test_reflection_lists_decision_service(start_service):
    running = start_service(**{"learner.enabled": False})
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    database = ProtoReflectionDescriptorDatabase(channel)
    pool = DescriptorPool(database)

    services = database.get_services()
    service = pool.FindServiceByName("loyalty_bandit.v1.DecisionService")
    method = service.methods_by_name["Decide"]

    assert "loyalty_bandit.v1.DecisionService" in services
    assert "grpc.health.v1.Health" in services
    assert method.input_type.full_name == "loyalty_bandit.v1.DecideRequest"
    channel.close()
