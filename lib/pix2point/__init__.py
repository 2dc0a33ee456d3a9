"""pix2point: pretrain 3D point-cloud networks with knowledge from frozen 2D image networks."""

__version__ = "0.1.0"
