"""S3 for real: the export written through prefect-aws's ``S3Bucket`` block to a local S3-compatible server.

The server is moto's server mode on 127.0.0.1 (a real HTTP S3 API: boto3 signs and sends every request);
the test is skipped, saying why, where moto or prefect-aws is missing or the server cannot start.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from atlasflow.flows.jira_export import jira_export
from atlasflow.sandbox.app import Sandbox

BUCKET = "acme-reports"


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    server_module = pytest.importorskip("moto.server", reason="moto[server] is not installed")
    pytest.importorskip("prefect_aws", reason="prefect-aws is not installed")
    try:
        server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
    except Exception as exc:  # a port or dependency problem: say so rather than fail
        pytest.skip(f"moto's S3 server did not start: {type(exc).__name__}: {exc}")
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_export_lands_in_an_s3_bucket(cloud_site: Sandbox, tmp_path: Path, s3_endpoint: str) -> None:
    import boto3
    from prefect_aws import AwsClientParameters, AwsCredentials, S3Bucket

    secret = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, **secret)
    s3.create_bucket(Bucket=BUCKET)
    credentials = AwsCredentials(**secret, aws_client_parameters=AwsClientParameters(endpoint_url=s3_endpoint))
    S3Bucket(bucket_name=BUCKET, bucket_folder="atlasflow", credentials=credentials).save("exports", overwrite=True)

    result = jira_export(root_tickets=["DEMO-1"], storage_block="s3-bucket/exports", output_dir=str(tmp_path))

    local = Path(result["path"])
    key = f"atlasflow/jira-export-roots-DEMO-1/{local.name}"
    assert result["delivered"] == [f"s3://{BUCKET}/{key}"]
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert listed == [key]
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == local.read_bytes()
