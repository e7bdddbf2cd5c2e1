"""Every AWS failure as one line a person can act on (scanner.aws.errors.describe).

Client errors come from a real EC2 client answered by botocore's Stubber, so they carry the
operation name and error shape botocore gives them; nothing leaves the process.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)
from botocore.stub import Stubber

from scanner.aws.errors import AwsError, describe, error_code

AMI = "ami-0123456789abcdef0"
ENCODED_BLOB = (
    "Encoded authorization failure message: 4GIOHlTkIaWHQD0Q0m6XSnuUMCm-2Hkq7C_zBfu1YQ1Nq"
    "Xz0l3cV9p8d5_kQmDqJwC7vzT4nX0b2eR9yS1uF6hA3gL8oK"
)


@pytest.fixture
def ec2() -> Iterator[Any]:
    client = boto3.client("ec2", region_name="us-east-1")
    with Stubber(client) as stubber:
        client.stubber = stubber
        yield client
        stubber.assert_no_pending_responses()


def client_error(
    ec2: Any, operation: str, code: str, message: str, status: int = 400, **params: Any
) -> ClientError:
    """The ClientError botocore raises when AWS answers `operation` with `code`."""
    ec2.stubber.add_client_error(
        operation, service_error_code=code, service_message=message, http_status_code=status
    )
    with pytest.raises(ClientError) as raised:
        getattr(ec2, operation)(**params)
    return raised.value


def assert_one_line(error: AwsError) -> str:
    text = str(error)
    assert "\n" not in text
    assert "Traceback" not in text
    return text


def test_access_denied_names_the_action_and_the_missing_permission(ec2: Any) -> None:
    exc = client_error(
        ec2,
        "describe_images",
        "AccessDenied",
        "User: arn:aws:iam::123456789012:user/ci is not authorized to perform this action",
        403,
        ImageIds=[AMI],
    )
    error = describe(exc, f"describing {AMI}")
    text = assert_one_line(error)
    assert text.startswith(f"describing {AMI}: access denied for ec2:DescribeImages (AccessDenied)")
    assert "the credentials need permission for it" in text
    assert "user/ci is not authorized" in text
    assert (error.code, error.usage) == ("AccessDenied", False)


def test_unauthorized_operation_drops_the_encoded_authorization_blob(ec2: Any) -> None:
    exc = client_error(
        ec2,
        "run_instances",
        "UnauthorizedOperation",
        f"You are not authorized to perform this operation. {ENCODED_BLOB}",
        403,
        ImageId=AMI,
        MinCount=1,
        MaxCount=1,
    )
    error = describe(exc, "launching the instance")
    text = assert_one_line(error)
    assert text == (
        "launching the instance: access denied for ec2:RunInstances (UnauthorizedOperation); "
        "the credentials need permission for it. You are not authorized to perform this "
        "operation."
    )
    assert error.code == "UnauthorizedOperation"


def test_an_encoded_blob_spanning_lines_is_dropped_whole(ec2: Any) -> None:
    exc = client_error(
        ec2,
        "import_key_pair",
        "UnauthorizedOperation",
        f"You are not authorized to perform this operation. {ENCODED_BLOB}\nmore-blob\nend",
        403,
        KeyName="k",
        PublicKeyMaterial=b"ssh-ed25519 AAAA",
    )
    text = assert_one_line(describe(exc, "importing the temporary key pair"))
    assert "blob" not in text and "Encoded" not in text


def test_auth_failure_is_reported_as_rejected_credentials_with_aws_reason(ec2: Any) -> None:
    exc = client_error(
        ec2,
        "describe_vpcs",
        "AuthFailure",
        "AWS was not able to validate the provided access credentials",
        401,
    )
    text = assert_one_line(describe(exc, "finding a subnet"))
    assert "the AWS credentials were rejected (AuthFailure)" in text
    assert "access denied" not in text
    assert "AWS was not able to validate the provided access credentials" in text


def test_rejected_credentials_say_so_not_access_denied(ec2: Any) -> None:
    exc = client_error(
        ec2,
        "describe_images",
        "ExpiredToken",
        "The security token included in the request is expired",
        ImageIds=[AMI],
    )
    error = describe(exc, f"describing {AMI}")
    assert assert_one_line(error) == (
        f"describing {AMI}: the AWS credentials were rejected (ExpiredToken): "
        "The security token included in the request is expired"
    )
    assert not error.usage


def test_insufficient_capacity_keeps_the_code_and_aws_message(ec2: Any) -> None:
    message = (
        "We currently do not have sufficient t3.micro capacity in the Availability Zone you "
        "requested (us-east-1a)."
    )
    exc = client_error(
        ec2,
        "run_instances",
        "InsufficientInstanceCapacity",
        message,
        500,
        ImageId=AMI,
        MinCount=1,
        MaxCount=1,
    )
    error = describe(exc, "launching the instance")
    assert assert_one_line(error) == (
        f"launching the instance: InsufficientInstanceCapacity: {message}"
    )
    assert error.code == "InsufficientInstanceCapacity"


def test_an_unknown_ami_keeps_its_code_for_the_target_to_call_it_bad_input(ec2: Any) -> None:
    exc = client_error(
        ec2,
        "describe_images",
        "InvalidAMIID.NotFound",
        f"The image id '[{AMI}]' does not exist",
        ImageIds=[AMI],
    )
    error = describe(exc, f"describing {AMI}")
    assert error.code == "InvalidAMIID.NotFound"
    assert error_code(exc) == error_code(error) == "InvalidAMIID.NotFound"
    assert f"'[{AMI}]' does not exist" in assert_one_line(error)


def test_throttling_names_the_code(ec2: Any) -> None:
    exc = client_error(
        ec2, "describe_instances", "RequestLimitExceeded", "Request limit exceeded.", 503
    )
    error = describe(exc, "describing i-0abc")
    assert assert_one_line(error) == (
        "describing i-0abc: RequestLimitExceeded: Request limit exceeded."
    )
    assert error.code == "RequestLimitExceeded"


@pytest.mark.parametrize(
    ("exc", "expected", "usage"),
    [
        pytest.param(
            NoCredentialsError(),
            f"describing {AMI}: no usable AWS credentials (set AWS_PROFILE or --profile, "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws configure`)",
            False,
            id="no-credentials",
        ),
        pytest.param(
            PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
            f"describing {AMI}: no usable AWS credentials",
            False,
            id="partial-credentials",
        ),
        pytest.param(
            NoRegionError(),
            f"describing {AMI}: no region; pass --region or set AWS_REGION",
            True,
            id="no-region",
        ),
        pytest.param(
            EndpointConnectionError(endpoint_url="https://ec2.us-east-1.amazonaws.com/"),
            f"describing {AMI}: cannot reach the EC2 endpoint (https://ec2.us-east-1.amazonaws.com/)",
            False,
            id="endpoint-unreachable",
        ),
        pytest.param(
            ProfileNotFound(profile="nope"),
            f"describing {AMI}: The config profile (nope) could not be found",
            True,
            id="profile-not-found",
        ),
    ],
)
def test_botocore_failures_become_one_line_and_say_whose_fault(
    exc: Exception, expected: str, usage: bool
) -> None:
    error = describe(exc, f"describing {AMI}")
    assert assert_one_line(error).startswith(expected)
    assert error.usage is usage


def test_an_aws_error_passes_through_unchanged() -> None:
    original = AwsError("this region has no default VPC; pass --subnet-id")
    assert describe(original, "finding a subnet") is original


def test_anything_else_keeps_its_type_in_the_line() -> None:
    error = describe(TimeoutError("read timed out"), "describing i-0abc")
    assert str(error) == "describing i-0abc: TimeoutError: read timed out"
    assert error_code(TimeoutError()) == ""
