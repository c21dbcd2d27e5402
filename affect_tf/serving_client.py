r"""A small client of the exported model under TF Serving, over gRPC or REST.

    pip install ".[serving]"
    python -m affect_tf.serving_client --server=localhost:8500 photo.jpg other.png    # gRPC
    python -m affect_tf.serving_client --rest=http://localhost:8501 photo.jpg         # REST

It sends the files' bytes as they are (the model decodes JPEG, PNG, GIF and BMP itself) and prints
each image's label, probabilities and top regions. The request builders are separate functions, so
a test can build the exact request a server receives.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import urllib.request
from typing import Sequence

MODEL_NAME = "affect_tf"
SIGNATURE = "serving_default"


def predict_request(images: Sequence[bytes], model_name: str = MODEL_NAME,
                    signature: str = SIGNATURE):
    """The gRPC ``PredictRequest`` of encoded images (``tensorflow-serving-api`` protos).

    Args:
        images: encoded image files, any sizes.
        model_name: the ``--model_name`` TF Serving was started with.
        signature: ``serving_default`` (proposals in the graph).

    Returns:
        A ``tensorflow_serving.apis.predict_pb2.PredictRequest`` with the string input ``images``.
    """
    import tensorflow as tf  # noqa: PLC0415  (only the gRPC path needs TensorFlow's protos)
    from tensorflow_serving.apis import predict_pb2  # noqa: PLC0415

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    request.inputs["images"].CopyFrom(tf.make_tensor_proto([bytes(data) for data in images]))
    return request


def rest_body(images: Sequence[bytes], signature: str = SIGNATURE) -> dict:
    """The REST ``:predict`` body: ``{"signature_name": ..., "instances": [{"b64": ...}, ...]}``.

    TF Serving decodes each ``{"b64": ...}`` into the bytes of one element of the string input.
    """
    return {"signature_name": signature,
            "instances": [{"b64": base64.b64encode(bytes(data)).decode("ascii")}
                          for data in images]}


def predict_grpc(server: str, images: Sequence[bytes], timeout: float = 60.0) -> dict:
    """Sends :func:`predict_request` to ``host:port`` and returns ``{output: numpy array}``."""
    import grpc  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415
    from tensorflow_serving.apis import prediction_service_pb2_grpc  # noqa: PLC0415

    with grpc.insecure_channel(server) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(predict_request(images), timeout)
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def predict_rest(url: str, images: Sequence[bytes], timeout: float = 60.0) -> list[dict]:
    """POSTs :func:`rest_body` to ``<url>/v1/models/affect_tf:predict``; one dict per image."""
    request = urllib.request.Request(
        f"{url.rstrip('/')}/v1/models/{MODEL_NAME}:predict",
        data=json.dumps(rest_body(images)).encode("utf-8"),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())["predictions"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", help="image files")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--server", help="gRPC host:port (TF Serving's --port, e.g. 8500)")
    target.add_argument("--rest", help="REST base URL (TF Serving's --rest_api_port, e.g. "
                                       "http://localhost:8501)")
    args = parser.parse_args(argv)
    images = []
    for path in args.images:
        with open(path, "rb") as handle:
            images.append(handle.read())
    if args.server:
        outputs = predict_grpc(args.server, images)
        rows = [{name: value[index].tolist() for name, value in outputs.items()}
                for index in range(len(images))]
    else:
        rows = predict_rest(args.rest, images)
    for path, row in zip(args.images, rows):
        name = row["label_name"]
        name = name.decode() if isinstance(name, bytes) else name
        print(f"{path}: {name} p = {row['probabilities']}, top region {row['region_boxes'][0]} "
              f"(AR {row['region_ar'][0]:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
