"""The DSJson export parses with VW's own parser and trains a cb_explore_adf model."""

from __future__ import annotations

import json
import subprocess
import sys

import vowpal_wabbit_next as vw
from conftest import decide_request

from bandit.config import PolicyConfig
from bandit.features import example_lines
from bandit.store.export import dsjson_record


def test_dsjson_export_parses_and_trains(start_service, tmp_path):
    running = start_service(**{"learner.enabled": False, "rewards.window_seconds": 3600.0})
    for index in range(40):
        response = running.client.decide(decide_request(f"e-{index}", slots=("now", "this_evening")))
        running.client.reward(response.event_id, float(index % 3))
    far_future = response.send_at.seconds + 30 * 24 * 3600.0
    running.service.store.join_closed(now=far_future).result()
    running.stop()
    output = tmp_path / "events.dsjson"

    subprocess.run(
        [sys.executable, "-m", "loyalty_bandit.cli", "export", "--format", "dsjson",
         "--store", str(running.config.store.path), "--output", str(output)],
        check=True,
        capture_output=True,
    )

    lines = output.read_text().splitlines()
    assert len(lines) == 40
    workspace = vw.Workspace(PolicyConfig().vw_args())
    parser = vw.DSJsonFormatParser(workspace)
    for line in lines:
        record = json.loads(line)
        examples = parser.parse_json(line)
        assert len(examples) == 1 + len(record["a"])
        assert record["_label_Action"] == record["a"][0]
        assert abs(sum(record["p"]) - 1.0) < 1e-9
        workspace.learn_one(examples)
    assert workspace.weights().any()


def test_dsjson_features_hash_like_served_examples(start_service):
    running = start_service(**{"learner.enabled": False, "rewards.window_seconds": 3600.0})
    response = running.client.decide(decide_request("same-hash"))
    running.service.store.join_closed(now=response.send_at.seconds + 30 * 24 * 3600.0).result()
    event = next(running.service.store.iter_joined())

    workspace = vw.Workspace(["--cb_explore_adf", "--quiet"])
    json_examples = vw.DSJsonFormatParser(workspace).parse_json(json.dumps(dsjson_record(event)))
    text_parser = vw.TextFormatParser(workspace)
    text_examples = [text_parser.parse_line(line) for line in example_lines(event.request, event.actions)]

    def hashes(example):
        groups = []
        for group in example.feat_group_indices:
            features = example[group]
            groups.append((group, sorted(zip(features.indices, features.values, strict=True))))
        return sorted(groups)

    # "_multi" keeps the policy's action order; only "a" and "p" list the served action first.
    assert len(json_examples) == len(text_examples)
    for json_example, text_example in zip(json_examples, text_examples, strict=True):
        assert hashes(json_example) == hashes(text_example)
    labelled = [index for index, example in enumerate(json_examples[1:]) if example.get_label().label is not None]
    assert labelled == [event.chosen_index]
