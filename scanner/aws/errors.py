"""Every AWS failure as one line a person can act on, and whether it is their input's fault."""

from __future__ import annotations

import re

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)


class AwsError(Exception):
    """An AWS call failed; `usage` is True when the user's input is at fault (exit 2, not 3)."""

    def __init__(self, message: str, usage: bool = False, code: str = "") -> None:
        super().__init__(message)
        self.usage = usage
        self.code = code


_PERMISSION_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
}
# EC2's AuthFailure means the request's credentials were not accepted at all.
_CREDENTIAL_CODES = {
    "AuthFailure",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "RequestExpired",
    "InvalidAccessKeyId",
    "UnrecognizedClientException",
}
# AWS appends a long encoded blob to UnauthorizedOperation messages; people need the action.
_ENCODED = re.compile(r"\s*Encoded authorization failure message:.*$", re.DOTALL)


def describe(exc: BaseException, action: str) -> AwsError:
    """An AwsError whose message says what was being done, what AWS said, and what to do."""
    if isinstance(exc, AwsError):
        return exc
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return AwsError(
            f"{action}: no usable AWS credentials (set AWS_PROFILE or --profile, "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws configure`)"
        )
    if isinstance(exc, ProfileNotFound):
        return AwsError(f"{action}: {exc}", usage=True)
    if isinstance(exc, NoRegionError):
        return AwsError(f"{action}: no region; pass --region or set AWS_REGION", usage=True)
    if isinstance(exc, EndpointConnectionError):
        return AwsError(
            f"{action}: cannot reach the EC2 endpoint ({exc.kwargs.get('endpoint_url', '?')})"
        )
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = _ENCODED.sub("", str(error.get("Message", ""))).strip()
        if code in _PERMISSION_CODES:
            operation = exc.operation_name
            return AwsError(
                f"{action}: access denied for ec2:{operation} ({code}); the credentials need "
                f"permission for it. {message}".strip(),
                code=code,
            )
        if code in _CREDENTIAL_CODES:
            return AwsError(
                f"{action}: the AWS credentials were rejected ({code}): {message}", code=code
            )
        return AwsError(f"{action}: {code}: {message}", code=code)
    if isinstance(exc, BotoCoreError):
        return AwsError(f"{action}: {exc}")
    return AwsError(f"{action}: {type(exc).__name__}: {exc}")


def error_code(exc: BaseException) -> str:
    if isinstance(exc, AwsError):
        return exc.code
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""
