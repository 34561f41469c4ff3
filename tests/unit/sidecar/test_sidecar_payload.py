"""Reading features, ids and predictions out of request and response JSON."""

from __future__ import annotations

import json

from shipway.sidecar import payload

NAMES = ("a", "b", "c")


def test_oip_tensor_of_rows_by_features_maps_columns_in_profile_order() -> None:
    document = {"inputs": [{"name": "predict", "shape": [2, 3], "datatype": "FP64", "data": [[1, 2, 3], [4, 5, 6]]}]}
    found = payload.features(document, NAMES)
    assert found is not None
    assert found.rows == 2
    assert found.columns == {"a": [1, 4], "b": [2, 5], "c": [3, 6]}
    # The flat row-major encoding of the same tensor reads the same.
    document["inputs"][0]["data"] = [1, 2, 3, 4, 5, 6]
    assert payload.features(document, NAMES).columns == found.columns


def test_oip_inputs_named_after_features_are_columns() -> None:
    document = {
        "id": "abc",
        "inputs": [
            {"name": "a", "shape": [2], "datatype": "FP32", "data": [1.5, 2.5]},
            {"name": "c", "shape": [2, 1], "datatype": "BYTES", "data": [["x"], ["y"]]},
            {"name": "unrelated", "shape": [2], "datatype": "FP32", "data": [0, 0]},
        ],
    }
    found = payload.features(document, NAMES)
    assert found.columns == {"a": [1.5, 2.5], "c": ["x", "y"]}
    assert payload.request_id(document) == "abc"


def test_plain_rows_as_objects_lists_and_wrappers() -> None:
    objects = [{"a": 1, "b": 2, "c": "z"}, {"a": 3, "c": "y"}]
    assert payload.features(objects, NAMES).columns == {"a": [1, 3], "b": [2, None], "c": ["z", "y"]}
    assert payload.features({"instances": [[1, 2, 3]]}, NAMES).columns == {"a": [1], "b": [2], "c": [3]}
    assert payload.features({"dataframe_records": objects}, NAMES).rows == 2
    assert payload.features({"a": 1, "b": 2, "c": 3}, NAMES).rows == 1
    assert payload.features([7, 8, 9], NAMES).columns == {"a": [7], "b": [8], "c": [9]}


def test_unreadable_documents_give_none_instead_of_raising() -> None:
    for document in (None, "text", 5, [], {}, {"inputs": "x"}, [[1, 2]], {"other": 1}, {"inputs": [{"name": "p", "data": [1], "shape": "bad"}]}):
        assert payload.features(document, NAMES) is None
    assert payload.load_json(b"{oops") is None
    assert payload.load_json(b"\xff") is None
    assert payload.load_json(b"[" * 100_000 + b"]" * 100_000) is None
    assert payload.features({"instances": [[1, 2, 3]]}, ()) is None


def test_predictions_from_oip_outputs_plain_predictions_or_a_list() -> None:
    oip = {"outputs": [{"name": "predict", "shape": [2, 1], "datatype": "INT64", "data": [[1], [0]]}]}
    assert payload.predictions(oip) == [1, 0]
    assert payload.predictions({"predictions": [0.2, 0.8]}) == [0.2, 0.8]
    assert payload.predictions(json.loads("[1, 2]")) == [1, 2]
    assert payload.predictions({"error": "x"}) is None
