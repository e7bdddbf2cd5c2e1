"""Image facts: the AMI's attributes (DescribeImages) and the account's EBS defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scanner.facts.base import Fact, FactUnavailable, Gathered


@dataclass(frozen=True)
class ImageInfo:
    """What DescribeImages said about the AMI, where it lives, and the account's defaults."""

    attributes: dict[str, Any]
    region: str
    # None when the account setting could not be read (the check then judges the image alone).
    ebs_encryption_by_default: bool | None = None

    @property
    def image_id(self) -> str:
        return str(self.attributes.get("ImageId", ""))


def _derive_image(g: Gathered) -> ImageInfo:
    image = g.context.extra.get("image")
    if not isinstance(image, ImageInfo):
        raise FactUnavailable("image attributes are only known when scanning an AMI (ami-…)")
    return image


IMAGE = Fact(
    name="image.attributes",
    description="the AMI's attributes",
    derive=_derive_image,
    platform="image",
)
