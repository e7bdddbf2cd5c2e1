"""amiscan: will this AMI pass AWS Marketplace vetting?"""

__version__ = "0.1.0"
